"""The ledger's errors: every refusal names what was wrong, where, and by which rule.

LedgerError
├── InvalidInput            bad input: a field with a wrong value or format
│   └── ReasonRequired      an override or back-dated entry without a reason
├── NotFound                a referenced object does not exist (or is another tenant's)
├── RuleViolation           a command that breaks a business rule; writes nothing
│   ├── InvalidTransition   a state machine refuses the command in the current state
│   ├── InsufficientStock   a reservation or movement larger than what is available
│   ├── NotAllocatable      expired or quarantined stock asked for
│   ├── StopAlreadyVisited  a re-plan would move or re-time a stop where something has happened
│   └── ReplanBeforeLastFact  a re-plan dated before facts already recorded about what it re-plans
└── ConcurrencyConflict     the stream kept changing under the command; retries ran out
"""

from __future__ import annotations

__all__ = [
    "BatchRejected",
    "ConcurrencyConflict",
    "InsufficientStock",
    "InvalidInput",
    "InvalidTransition",
    "LedgerError",
    "NotAllocatable",
    "NotFound",
    "ReasonRequired",
    "ReplanBeforeLastFact",
    "RuleViolation",
    "StopAlreadyVisited",
]


class LedgerError(Exception):
    """Base of every refusal. `code` is stable for machines, the message is for people."""

    code = "ledger_error"

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field, "rule": self.rule}


class InvalidInput(LedgerError):
    code = "invalid_input"


class ReasonRequired(InvalidInput):
    code = "reason_required"

    def __init__(self, what: str):
        super().__init__(f"a reason is required for {what}", field="reason", rule="reason_required")


class BatchRejected(InvalidInput):
    """Every problem of a batch, each as (row or line number, column or field, reason)."""

    code = "batch_rejected"

    def __init__(self, what: str, problems: list[tuple[int, str, str]]):
        super().__init__(
            f"{what}: {len(problems)} bad row(s); nothing was recorded", rule="all_or_nothing"
        )
        self.problems = problems


class NotFound(LedgerError):
    code = "not_found"

    def __init__(self, kind: str, key: object, *, field: str | None = None):
        super().__init__(f"{kind} {key} not found", field=field, rule="must_exist")
        self.kind = kind
        self.key = key


class RuleViolation(LedgerError):
    code = "rule_violation"


class InvalidTransition(RuleViolation):
    code = "invalid_transition"

    def __init__(self, entity: str, state: str, command: str):
        super().__init__(f"cannot {command} a {entity} that is {state}", rule=f"{entity}.{command}")
        self.entity = entity
        self.state = state
        self.command = command


class InsufficientStock(RuleViolation):
    code = "insufficient_stock"


class NotAllocatable(RuleViolation):
    code = "not_allocatable"


class StopAlreadyVisited(RuleViolation):
    """A re-plan keeps a stop with an arrival, a departure or any other visit fact where it is."""

    code = "stop_already_visited"


class ReplanBeforeLastFact(RuleViolation):
    """A re-plan is dated before a fact already recorded about a load it re-plans."""

    code = "replan_before_last_fact"


class ConcurrencyConflict(LedgerError):
    code = "concurrency_conflict"
