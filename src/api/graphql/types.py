"""The GraphQL object types. Each is built from one view row by `from_row(...)`; the fields
that need more (a load's stops, exceptions, last position, billing) read through the
request's loaders. Fields outside the customer-safe view read as null for shipper keys."""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import Private

from api.graphql.context import GqlInfo, off_loop
from api.graphql.fields import field
from api.graphql.loaders import BOARD_COLUMNS, STOP_COLUMNS, Row
from api.graphql.permissions import Authenticated, Billing, hidden_from_shippers
from api.graphql.scalars import LogPosition
from api.keys import Role
from ledger.errors import NotFound
from ledger.history import CUSTOMER_STATUS, LoadHistory, vehicle_history
from ledger.timeline import OpenExceptionState
from ledger.timeline import VehiclePosition as PositionState
from projections.load_board import board_row
from projections.stop_times import stop_row

__all__ = [
    "BillingLine",
    "BoardChange",
    "ExceptionKind",
    "FactSource",
    "InventoryPosition",
    "Kpi",
    "Load",
    "LoadConnection",
    "LoadEdge",
    "LoadStatus",
    "Node",
    "OpenException",
    "PageInfo",
    "Place",
    "Stop",
    "StopFactKind",
    "StopKind",
    "TimeWindow",
    "VehiclePosition",
    "decode_global_id",
    "global_id",
]


# --- enums (their values are the ledger's) ----------------------------------------------------


@strawberry.enum
class LoadStatus(enum.Enum):
    PLANNED = "planned"
    TENDERED = "tendered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DISPATCHED = "dispatched"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    POD_RECEIVED = "pod_received"
    READY_TO_INVOICE = "ready_to_invoice"
    INVOICED = "invoiced"
    CANCELLED = "cancelled"


@strawberry.enum
class StopKind(enum.Enum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


@strawberry.enum(description="A fact about a stop from the world (a POD has its own mutation)")
class StopFactKind(enum.Enum):
    ARRIVED = "arrived"
    DEPARTED = "departed"
    LOADING_COMPLETED = "loading_completed"
    UNLOADING_COMPLETED = "unloading_completed"
    DELIVERY_ATTEMPTED = "delivery_attempted"
    REFUSED = "refused"
    ETA_REPORTED = "eta_reported"


@strawberry.enum(description="Where a stop fact came from (an operator override: overrideStopFact)")
class FactSource(enum.Enum):
    API = "api"
    DRIVER_APP = "driver_app"
    EDI = "edi"
    ELD = "eld"
    GPS = "gps"


@strawberry.enum
class ExceptionKind(enum.Enum):
    DELAYED = "delayed"
    SHORT = "short"
    OVER = "over"
    DAMAGED = "damaged"
    REFUSED = "refused"
    ATTEMPTED = "attempted"
    HELD = "held"
    CLAIM = "claim"
    CONFLICTING_FACTS = "conflicting_facts"


# --- helpers -----------------------------------------------------------------------------------


def _time(value: object) -> datetime | None:
    return None if value in (None, "") else datetime.fromisoformat(str(value))


def _required_time(value: object) -> datetime:
    moment = _time(value)
    assert moment is not None, "the view column is NOT NULL"
    return moment


def _id(value: object) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def global_id(type_name: str, key: str) -> strawberry.ID:
    """An opaque id naming the type and the key (for `node(id:)`)."""
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode())


def decode_global_id(value: str) -> tuple[str, str] | None:
    try:
        type_name, _, key = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (type_name, key) if type_name and key else None


def _is_shipper(info: GqlInfo) -> bool:
    principal = info.context.principal
    return principal is not None and principal.role is Role.SHIPPER


# --- small value types ---------------------------------------------------------------------------


@strawberry.type
class TimeWindow:
    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: object, end: object) -> TimeWindow | None:
        begin, finish = _time(start), _time(end)
        return None if begin is None or finish is None else cls(start=begin, end=finish)


@strawberry.type(description="A location a stop is at")
class Place:
    name: str
    code: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    address: str | None = strawberry.field(extensions=[hidden_from_shippers()])


@strawberry.type(description="The last known position of a vehicle by event time")
class VehiclePosition:
    device_id: str
    vehicle_code: str | None
    lat: float
    lon: float
    speed_kph: float | None
    heading: float | None
    fix_at: datetime
    position: LogPosition = strawberry.field(description="the log position of the ping")

    @field(description="seconds between the fix and now (the ledger's clock)")
    def age_seconds(self, info: GqlInfo) -> float:
        return (info.context.services.ledger.clock() - self.fix_at).total_seconds()

    @classmethod
    def from_row(cls, row: Row) -> VehiclePosition:
        return cls(
            device_id=str(row["device_id"]),
            vehicle_code=row["vehicle_code"],
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            speed_kph=None if row["speed_kph"] is None else float(row["speed_kph"]),
            heading=None if row["heading"] is None else float(row["heading"]),
            fix_at=_required_time(row["fix_at"]),
            position=LogPosition(int(row["position"])),
        )

    @classmethod
    def from_state(cls, state: PositionState, vehicle_code: str) -> VehiclePosition:
        return cls(
            device_id=state.device_id,
            vehicle_code=vehicle_code,
            lat=state.ping.lat,
            lon=state.ping.lon,
            speed_kph=state.ping.speed_kph,
            heading=state.ping.heading,
            fix_at=state.ping.occurred_at,
            position=LogPosition(state.position),
        )


@strawberry.type(description="An open exception on a load or one of its stops")
class OpenException:
    exception_id: str
    kind: ExceptionKind
    load_id: strawberry.ID
    load_reference: str
    stop_id: strawberry.ID | None
    raised_at: datetime
    owner: str | None = strawberry.field(
        description="who owns the next action", extensions=[hidden_from_shippers()]
    )
    note: str | None = strawberry.field(extensions=[hidden_from_shippers()])

    @field(description="minutes since it was raised (the ledger's clock)")
    def age_minutes(self, info: GqlInfo) -> int:
        age = info.context.services.ledger.clock() - self.raised_at
        return max(0, int(age.total_seconds() // 60))

    @field(description="the load it is on, as the board shows it now")
    async def load(self, info: GqlInfo) -> Load | None:
        row = await info.context.loaders.boards.load(str(self.load_id))
        return None if row is None else Load.from_row(row)

    @classmethod
    def from_row(cls, row: Row) -> OpenException:
        return cls(
            exception_id=str(row["exception_id"]),
            kind=ExceptionKind(row["kind"]),
            load_id=strawberry.ID(str(row["load_id"])),
            load_reference=str(row["load_reference"]),
            stop_id=_id(row["stop_id"]),
            raised_at=_required_time(row["raised_at"]),
            owner=row["owner"],
            note=row["note"],
        )

    @classmethod
    def from_state(cls, state: OpenExceptionState, load_id: str, reference: str) -> OpenException:
        return cls(
            exception_id=state.exception_id,
            kind=ExceptionKind(state.kind.value),
            load_id=strawberry.ID(load_id),
            load_reference=reference,
            stop_id=_id(state.stop_id),
            raised_at=state.raised_at,
            owner=state.owner,
            note=state.note,
        )


@strawberry.type(description="One stop of a load: window, reconciled arrival and departure")
class Stop:
    stop_id: strawberry.ID
    sequence: int
    kind: StopKind
    window: TimeWindow
    appointment: TimeWindow | None
    arrived_at: datetime | None
    departed_at: datetime | None
    eta: datetime | None
    arrival_source: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    arrival_fact_id: str | None = strawberry.field(
        description="the fact in effect (what an override supersedes)",
        extensions=[hidden_from_shippers()],
    )
    departure_source: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    departure_fact_id: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    dwell_minutes: int | None = strawberry.field(extensions=[hidden_from_shippers()])
    detention_minutes: int | None = strawberry.field(extensions=[hidden_from_shippers()])
    on_time: bool | None = strawberry.field(extensions=[hidden_from_shippers()])
    location_id: Private[str]

    @strawberry.field
    async def location(self, info: GqlInfo) -> Place | None:
        found = await info.context.loaders.locations.load(self.location_id)
        if found is None:
            return None
        return Place(name=found.name, code=found.code, address=found.address)

    @classmethod
    def from_row(cls, row: Row) -> Stop:
        window = TimeWindow.of(row["window_start"], row["window_end"])
        assert window is not None, "a stop always has a window"
        return cls(
            stop_id=strawberry.ID(str(row["stop_id"])),
            sequence=int(row["sequence"]),
            kind=StopKind(row["kind"]),
            window=window,
            appointment=TimeWindow.of(row["appointment_start"], row["appointment_end"]),
            arrived_at=_time(row["arrived_at"]),
            departed_at=_time(row["departed_at"]),
            eta=_time(row["eta"]),
            arrival_source=row["arrival_source"],
            arrival_fact_id=row["arrival_fact"],
            departure_source=row["departure_source"],
            departure_fact_id=row["departure_fact"],
            dwell_minutes=_int(row["dwell_minutes"]),
            detention_minutes=_int(row["detention_minutes"]),
            on_time=None if row["on_time"] is None else bool(row["on_time"]),
            location_id=str(row["location_id"]),
        )


@strawberry.type(description="A charge line of a load (finance, auditor and admin keys only)")
class BillingLine:
    line_id: str
    charge_key: str
    code: str
    stop_id: strawberry.ID | None
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal
    currency: str
    rate_card: str | None
    rate_version: int | None
    sources: list[LogPosition] = strawberry.field(
        description="the log positions it was computed from"
    )
    status: str
    invoice_number: str | None
    adjusts: str | None
    valid_from: LogPosition = strawberry.field(
        description="the log position that produced the line"
    )

    @classmethod
    def from_row(cls, row: Row) -> BillingLine:
        sources = str(row["sources"] or "")
        return cls(
            line_id=str(row["line_id"]),
            charge_key=str(row["charge_key"]),
            code=str(row["code"]),
            stop_id=_id(row["stop_id"]),
            quantity=Decimal(str(row["quantity"])),
            unit=str(row["unit"]),
            rate=Decimal(str(row["rate"])),
            amount=Decimal(str(row["amount"])),
            currency=str(row["currency"]),
            rate_card=row["rate_card"],
            rate_version=_int(row["rate_version"]),
            sources=[LogPosition(int(s)) for s in sources.split(",") if s],
            status=str(row["status"]),
            invoice_number=row["invoice_number"],
            adjusts=row["adjusts"],
            valid_from=LogPosition(int(row["valid_from"])),
        )


# --- loads -------------------------------------------------------------------------------------


@strawberry.interface(description="An object that `node(id:)` can fetch again by its id")
class Node:
    id: strawberry.ID


@strawberry.type(description="A load: one vehicle trip, as the board shows it (or at a viewpoint)")
class Load(Node):
    load_id: strawberry.ID
    reference: str
    status: LoadStatus
    customer_status: str = strawberry.field(description="the status as a customer is told it")
    status_since: datetime
    planned_day: date | None
    stops_total: int
    stops_done: int
    next_stop_sequence: int | None
    next_window_end: datetime | None
    eta: datetime | None = strawberry.field(description="the ETA at the next stop")
    lateness_risk: str = strawberry.field(description="late | at_risk | on_track | unknown | done")
    open_exception_count: int
    view_position: LogPosition = strawberry.field(
        description="the log position of the last event this row was computed from"
    )
    as_of: datetime | None = strawberry.field(description="the event-time viewpoint, if any")
    known_at: int | None = strawberry.field(description="the knowledge viewpoint, if any")
    carrier: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    driver_code: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    vehicle_code: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    next_action_owner: str | None = strawberry.field(extensions=[hidden_from_shippers()])
    conflicts: int | None = strawberry.field(
        description="pairs of stops whose reconciled times contradict the sequence",
        extensions=[hidden_from_shippers()],
    )
    tenders: int | None = strawberry.field(extensions=[hidden_from_shippers()])
    tenders_accepted: int | None = strawberry.field(extensions=[hidden_from_shippers()])
    tenants: Private[tuple[str, ...]]
    preloaded_stops: Private[list[Stop] | None]
    preloaded_exceptions: Private[list[OpenException] | None]

    @field(description="the shipper accounts the load serves (a shipper: its own)")
    def customers(self, info: GqlInfo) -> list[str]:
        principal = info.context.principal
        if principal is not None and principal.role is Role.SHIPPER:
            return [t for t in self.tenants if t == principal.tenant]
        return list(self.tenants)

    @field(description="the driver's name (a customer sees the first name only)")
    async def driver_name(self, info: GqlInfo) -> str | None:
        if self.driver_code is None:
            return None
        driver = await info.context.loaders.drivers.load(self.driver_code)
        if driver is None:
            return None
        if _is_shipper(info):
            return driver.first_name
        return f"{driver.first_name} {driver.last_name}"

    @strawberry.field
    async def stops(self, info: GqlInfo) -> list[Stop]:
        if self.preloaded_stops is not None:
            return self.preloaded_stops
        rows = await info.context.loaders.stops.load(str(self.load_id))
        return [Stop.from_row(row) for row in rows]

    @field(description="the exceptions open on the load or its stops")
    async def exceptions(self, info: GqlInfo) -> list[OpenException]:
        if self.preloaded_exceptions is not None:
            return self.preloaded_exceptions
        rows = await info.context.loaders.exceptions.load(str(self.load_id))
        return [OpenException.from_row(row) for row in rows]

    @field(
        description="current charge lines, or as they stood at `knownAt`",
        permission_classes=[Authenticated, Billing],
    )
    async def billing_lines(self, info: GqlInfo) -> list[BillingLine] | None:
        rows = await info.context.loaders.billing.load((str(self.load_id), self.known_at))
        return [BillingLine.from_row(row) for row in rows]

    @field(
        description="the vehicle's last position by event time (at the viewpoint, if any)",
        extensions=[hidden_from_shippers()],
    )
    async def last_position(self, info: GqlInfo) -> VehiclePosition | None:
        if self.vehicle_code is None:
            return None
        if self.as_of is None and self.known_at is None:
            row = await info.context.loaders.position_by_vehicle.load(self.vehicle_code)
            return None if row is None else VehiclePosition.from_row(row)
        code = self.vehicle_code
        try:
            state = await off_loop(
                vehicle_history,
                info.context.services.ledger,
                code,
                as_of=self.as_of,
                known_at=self.known_at,
            )
        except NotFound:
            return None
        return None if state is None else VehiclePosition.from_state(state, code)

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        *,
        stops: list[Stop] | None = None,
        exceptions: list[OpenException] | None = None,
        as_of: datetime | None = None,
        known_at: int | None = None,
    ) -> Load:
        status = str(row["status"])
        day = str(row["planned_day"] or "")
        tenants = str(row["tenants"] or "")
        return cls(
            id=global_id("Load", str(row["load_id"])),
            load_id=strawberry.ID(str(row["load_id"])),
            reference=str(row["reference"]),
            status=LoadStatus(status),
            customer_status=CUSTOMER_STATUS.get(status, status),
            status_since=_required_time(row["status_since"]),
            planned_day=date.fromisoformat(day) if day else None,
            stops_total=int(row["stops_total"]),
            stops_done=int(row["stops_done"]),
            next_stop_sequence=_int(row["next_stop_sequence"]),
            next_window_end=_time(row["next_window_end"]),
            eta=_time(row["next_eta"]),
            lateness_risk=str(row["lateness_risk"]),
            open_exception_count=int(row["open_exceptions"]),
            view_position=LogPosition(int(row["position"])),
            as_of=as_of,
            known_at=known_at,
            carrier=row["carrier_code"],
            driver_code=row["driver_code"],
            vehicle_code=row["vehicle_code"],
            next_action_owner=row["next_action_owner"],
            conflicts=int(row["conflicts"]),
            tenders=int(row["tenders"]),
            tenders_accepted=int(row["tenders_accepted"]),
            tenants=tuple(t for t in tenants.split(",") if t),
            preloaded_stops=stops,
            preloaded_exceptions=exceptions,
        )

    @classmethod
    def from_history(cls, history: LoadHistory) -> Load | None:
        """The load folded at a viewpoint (None when it was not planned yet), built with the
        same row functions the board and stop-times views use."""
        state = history.load
        if state is None:
            return None
        stops = sorted(history.stops, key=lambda s: s.sequence)
        row = dict(zip(BOARD_COLUMNS, board_row(state, list(stops)), strict=True))
        stop_rows = [dict(zip(STOP_COLUMNS, stop_row(s), strict=True)) for s in stops]
        load_id = str(state.load_id)
        exceptions = [
            OpenException.from_state(x, load_id, state.reference) for x in state.exceptions
        ]
        point = history.viewpoint
        return cls.from_row(
            row,
            stops=[Stop.from_row(r) for r in stop_rows],
            exceptions=exceptions,
            as_of=point.as_of,
            known_at=point.known_at,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class LoadEdge:
    cursor: str
    node: Load


@strawberry.type(description="A page of the board, in reference order")
class LoadConnection:
    edges: list[LoadEdge]
    page_info: PageInfo
    view_position: LogPosition = strawberry.field(description="the position the views had reached")


@strawberry.type(description="A board row whose view position moved past the one asked for")
class BoardChange:
    position: LogPosition = strawberry.field(description="resume from here with `afterPosition`")
    load: Load


# --- other views -------------------------------------------------------------------------------


@strawberry.type(description="Stock per warehouse × sku × lot")
class InventoryPosition:
    stock_id: strawberry.ID
    warehouse: str
    sku: str
    lot: str
    expiry: date | None
    on_hand: int
    reserved: int
    picked: int
    staged: int
    quarantined: int
    available: int
    position: LogPosition

    @classmethod
    def from_row(cls, row: Row) -> InventoryPosition:
        expiry = row["expiry"]
        return cls(
            stock_id=strawberry.ID(str(row["stock_id"])),
            warehouse=str(row["warehouse"]),
            sku=str(row["sku"]),
            lot=str(row["lot"]),
            expiry=date.fromisoformat(str(expiry)[:10]) if expiry else None,
            on_hand=int(row["on_hand"]),
            reserved=int(row["reserved"]),
            picked=int(row["picked"]),
            staged=int(row["staged"]),
            quarantined=int(row["quarantined"]),
            available=int(row["available"]),
            position=LogPosition(int(row["position"])),
        )


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 2)


@strawberry.type(description="KPIs for one day × carrier × customer (a carrier scorecard row)")
class Kpi:
    day: str
    carrier: str | None
    customer: str
    stops: int
    pickups: int
    pickups_on_time: int
    deliveries: int
    deliveries_on_time: int
    on_time_pickup_pct: float | None
    on_time_delivery_pct: float | None
    average_dwell_minutes: float | None
    detention_minutes: int
    loads: int
    tenders: int
    tenders_accepted: int
    tender_acceptance_pct: float | None
    exceptions: int
    exceptions_per_load: float | None

    @classmethod
    def from_row(cls, key: Sequence[str], stops: Row | None, loads: Row | None) -> Kpi:
        """One KPI row from `kpi_daily` (stop figures) and `kpi_loads_daily` (load figures)."""

        def n(row: Row | None, column: str) -> int:
            return 0 if row is None or row[column] is None else int(row[column])

        dwell_stops = n(stops, "dwell_stops")
        load_count = n(loads, "loads")
        return cls(
            day=key[0],
            carrier=key[1] or None,
            customer=key[2],
            stops=n(stops, "stops"),
            pickups=n(stops, "pickups"),
            pickups_on_time=n(stops, "pickups_on_time"),
            deliveries=n(stops, "deliveries"),
            deliveries_on_time=n(stops, "deliveries_on_time"),
            on_time_pickup_pct=_pct(n(stops, "pickups_on_time"), n(stops, "pickups")),
            on_time_delivery_pct=_pct(n(stops, "deliveries_on_time"), n(stops, "deliveries")),
            average_dwell_minutes=(
                None if dwell_stops == 0 else round(n(stops, "dwell_minutes") / dwell_stops, 2)
            ),
            detention_minutes=n(stops, "detention_minutes"),
            loads=load_count,
            tenders=n(loads, "tenders"),
            tenders_accepted=n(loads, "tenders_accepted"),
            tender_acceptance_pct=_pct(n(loads, "tenders_accepted"), n(loads, "tenders")),
            exceptions=n(loads, "exceptions"),
            exceptions_per_load=(
                None if load_count == 0 else round(n(loads, "exceptions") / load_count, 4)
            ),
        )
