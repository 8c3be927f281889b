"""Planning: start a plan job for a day and warehouse, follow its progress, read the plan;
re-plan a day mid-route."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import Svc, caller_for, require
from api.keys import Principal, Role
from ledger.errors import NotFound
from ledger.log import to_jsonable
from planner.jobs import PlanJob, PlanJobs
from planner.replan import replan_day

router = APIRouter(tags=["planning"])
Planner = Annotated[Principal, Depends(require(Role.DISPATCHER))]
Reader = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.AUDITOR, Role.SUPPORT))]


class PlanIn(BaseModel):
    day: date
    warehouse: str = Field(min_length=1, examples=["WH-1"])
    time_limit_seconds: float = Field(default=10, gt=0, le=300)


class JobOut(BaseModel):
    """A plan job: running with its best cost so far, done with its plan id, or failed."""

    job_id: str
    state: str
    best_cost: float | None
    unassigned: int | None
    elapsed_seconds: float
    plan_id: str | None
    error: str | None


class ReplanIn(BaseModel):
    day: date
    warehouse: str = Field(min_length=1, examples=["WH-1"])
    at: AwareDatetime | None = Field(
        default=None, description="what had happened by then counts (default: now)"
    )
    time_limit_seconds: float = Field(default=5, gt=0, le=60)


class ReplanOut(BaseModel):
    """A recorded re-plan: its id and log position, the plans it replaces, the planned loads it
    superseded, and the plan as recorded (fingerprint, figures, routes, orders left out)."""

    plan_id: str
    position: int
    at: AwareDatetime
    replaces: list[str]
    superseded_loads: list[str]
    left_alone: list[str]
    fingerprint: str
    figures: dict[str, Any]
    routes: list[dict[str, Any]]
    unplaced: list[dict[str, Any]]


def _jobs(request: Request, services: Svc) -> PlanJobs:
    jobs: PlanJobs | None = getattr(request.app.state, "plan_jobs", None)
    if jobs is None:
        jobs = request.app.state.plan_jobs = PlanJobs(services.ledger, services.db)
    return jobs


def _out(job: PlanJob) -> JobOut:
    return JobOut(
        job_id=job.job_id,
        state=job.state,
        best_cost=job.best_cost,
        unassigned=job.unassigned,
        elapsed_seconds=round(job.elapsed_seconds, 2),
        plan_id=job.plan_id,
        error=job.error,
    )


@router.post("/plans", response_model=JobOut, status_code=202)
def start_plan(body: PlanIn, request: Request, services: Svc, who: Planner) -> JobOut:
    """Plan the day's open orders of a warehouse in the background (poll the job)."""
    services.runner.catch_up()
    services.ledger.location(body.warehouse)
    job = _jobs(request, services).start(
        caller_for(who, request), body.day, body.warehouse, body.time_limit_seconds
    )
    return _out(job)


@router.post("/plans/replan", response_model=ReplanOut, status_code=201)
def replan(body: ReplanIn, request: Request, services: Svc, who: Planner) -> ReplanOut:
    """Re-plan a day mid-route from where each vehicle is at `at`, and record it."""
    services.runner.catch_up()
    services.ledger.location(body.warehouse)
    result = replan_day(
        services.ledger,
        services.db,
        caller_for(who, request),
        body.day,
        body.warehouse,
        at=body.at,
        time_limit=body.time_limit_seconds,
        workers=1,  # inside a web worker: one search, no child processes
    )
    record = services.ledger.find_plan(result.plan_id or "")
    if record is None:  # recorded just now; only a store that lost it gets here
        raise NotFound("plan", result.plan_id)
    return ReplanOut(
        plan_id=record.plan_id,
        position=result.position,
        at=result.at,
        replaces=list(record.replaces),
        superseded_loads=list(result.cancelled),
        left_alone=list(result.left_alone),
        fingerprint=record.fingerprint,
        figures=to_jsonable(record.figures),
        routes=to_jsonable(record.routes),
        unplaced=to_jsonable(record.unplaced),
    )


@router.get("/plans/jobs/{job_id}", response_model=JobOut)
def plan_job(job_id: str, request: Request, services: Svc, who: Planner) -> JobOut:
    """A plan job's progress: best cost so far and elapsed time, then its plan id."""
    job = _jobs(request, services).get(job_id)
    if job is None:
        raise NotFound("plan job", job_id)
    return _out(job)


@router.get("/plans/{plan_id}")
def recorded_plan(plan_id: str, services: Svc, who: Reader) -> dict[str, Any]:
    """A recorded plan: the inputs' fingerprint, the objective broken down, each route, and
    the orders left out with why."""
    record = services.ledger.find_plan(plan_id)
    if record is None:
        raise NotFound("plan", plan_id)
    return {
        "plan_id": record.plan_id,
        "day": record.day.isoformat(),
        "fingerprint": record.fingerprint,
        "figures": to_jsonable(record.figures),
        "routes": to_jsonable(record.routes),
        "unplaced": to_jsonable(record.unplaced),
        "replaces": list(record.replaces),
    }
