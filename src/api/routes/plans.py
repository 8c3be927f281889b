"""Planning: start a plan job for a day and warehouse, follow its progress, read the plan."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.deps import Svc, caller_for, require
from api.keys import Principal, Role
from ledger.errors import NotFound
from ledger.log import to_jsonable
from planner.jobs import PlanJob, PlanJobs

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
    }
