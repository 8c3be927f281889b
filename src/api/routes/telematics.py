"""Telematics: ping batches and duty-status batches (the ingestion use case)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import Svc, caller_for, require
from api.keys import Principal, Role
from ledger.drivers import DutyInput, DutyOrigin, DutyStatus
from ledger.errors import NotFound
from ledger.events import Source
from ledger.telematics import PingInput, PingSource

router = APIRouter(tags=["telematics"])
Writer = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.CARRIER))]


class PingIn(BaseModel):
    device_id: str = Field(min_length=1, examples=["TRK-07-GPS"])
    seq: int | None = Field(default=None, ge=0, examples=[1842])
    occurred_at: AwareDatetime = Field(examples=["2026-11-20T08:00:00-06:00"])
    lat: float = Field(ge=-90, le=90, examples=[41.85])
    lon: float = Field(ge=-180, le=180, examples=[-87.65])
    speed_kph: float | None = Field(default=None, ge=0)
    heading: float | None = Field(default=None, ge=0, le=360)
    odometer_km: float | None = None
    source: Literal["gps", "eld"] = "gps"


class PingBatch(BaseModel):
    pings: list[PingIn] = Field(min_length=1, max_length=20000)


class Refused(BaseModel):
    index: int
    reason: str


class IngestSummary(BaseModel):
    """Per batch: accepted, duplicates (counted, not stored) and refused items with why."""

    accepted: int
    duplicates: int
    refused: list[Refused]
    flagged: int = 0
    position: int


def _carrier_devices(services: Svc, principal: Principal, ids: set[str]) -> set[str]:
    """The devices a carrier may post for: installed on its own vehicles."""
    mine = set()
    for device_id in ids:
        try:
            vehicle = services.ledger.vehicle(services.ledger.device(device_id).vehicle_code)
        except NotFound:
            continue
        if vehicle.carrier_code == principal.tenant:
            mine.add(device_id)
    return mine


@router.post("/telematics/pings", response_model=IngestSummary)
def post_pings(batch: PingBatch, request: Request, services: Svc, who: Writer) -> IngestSummary:
    """Ingest a batch of GPS/ELD pings (any devices, any order) in one transaction."""
    pings = [
        PingInput(
            p.device_id,
            p.seq,
            p.occurred_at,
            p.lat,
            p.lon,
            p.speed_kph,
            p.heading,
            p.odometer_km,
            PingSource(p.source),
        )
        for p in batch.pings
    ]
    refused: list[Refused] = []
    index = list(range(len(pings)))
    if who.role is Role.CARRIER:
        allowed = _carrier_devices(services, who, {p.device_id for p in pings})
        refused = [
            Refused(index=i, reason=f"device {p.device_id} is not on a vehicle of {who.tenant}")
            for i, p in enumerate(pings)
            if p.device_id not in allowed
        ]
        index = [i for i, p in enumerate(pings) if p.device_id in allowed]
        pings = [pings[i] for i in index]
    report = services.ledger.ingest_pings(caller_for(who, request, Source.GPS), pings)
    refused += [Refused(index=index[i], reason=reason) for i, reason in report.refused]
    return IngestSummary(
        accepted=report.accepted,
        duplicates=report.duplicates,
        refused=sorted(refused, key=lambda r: r.index),
        flagged=report.flagged,
        position=report.position,
    )


class DutyIn(BaseModel):
    driver_code: str = Field(min_length=1, examples=["DRV-ANA"])
    occurred_at: AwareDatetime
    status: Literal["off_duty", "sleeper_berth", "driving", "on_duty"]
    origin: Literal["automatic", "driver_edited", "other_user"] = "automatic"
    vehicle_code: str | None = None
    note: str = ""


class DutyBatch(BaseModel):
    changes: list[DutyIn] = Field(min_length=1, max_length=20000)


@router.post("/telematics/duty", response_model=IngestSummary)
def post_duty(batch: DutyBatch, request: Request, services: Svc, who: Writer) -> IngestSummary:
    """Ingest ELD duty-status changes; an edited status needs a note (its reason)."""
    changes = [
        DutyInput(
            c.driver_code,
            c.occurred_at,
            DutyStatus(c.status),
            DutyOrigin(c.origin),
            c.vehicle_code,
            c.note,
        )
        for c in batch.changes
    ]
    refused: list[Refused] = []
    index = list(range(len(changes)))
    if who.role is Role.CARRIER:
        mine = []
        for i, change in enumerate(changes):
            try:
                ok = services.ledger.driver(change.driver_code).carrier_code == who.tenant
            except NotFound:
                ok = False
            if ok:
                mine.append(i)
            else:
                refused.append(Refused(index=i, reason=f"driver {change.driver_code} unknown"))
        index = mine
        changes = [changes[i] for i in mine]
    report = services.ledger.ingest_duty(caller_for(who, request, Source.ELD), changes)
    refused += [Refused(index=index[i], reason=reason) for i, reason in report.refused]
    return IngestSummary(
        accepted=report.accepted,
        duplicates=report.duplicates,
        refused=sorted(refused, key=lambda r: r.index),
        position=report.position,
    )
