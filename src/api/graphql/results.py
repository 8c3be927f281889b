"""One place maps ledger refusals to GraphQL: typed results for mutations, coded errors for
queries. A refusal names what was wrong, where and by which rule — never a stack trace.

    CommandResult = Recorded
                  | InvalidTransition   (RuleViolation: the state machine refused)
                  | RuleViolation       (any other business rule)
                  | ReasonRequired      (InvalidInput: an override or cancellation without why)
                  | InvalidInput
                  | NotFound            (or another tenant's)
                  | ConcurrencyConflict
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import GraphQLError

from api.graphql.scalars import LogPosition
from ledger import errors

__all__ = [
    "CommandResult",
    "ConcurrencyConflict",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "ReasonRequired",
    "Recorded",
    "Refusal",
    "RuleViolation",
    "query_error",
    "refusal",
]


@strawberry.type(description="The command was recorded; wait for `position` on reads")
class Recorded:
    position: LogPosition
    load_id: strawberry.ID | None = None


@strawberry.interface(description="Why a command was refused; nothing was written")
class Refusal:
    code: str
    message: str


@strawberry.type
class InvalidTransition(Refusal):
    entity: str
    state: str
    command: str


@strawberry.type
class RuleViolation(Refusal):
    rule: str | None


@strawberry.type
class ReasonRequired(Refusal):
    field: str | None


@strawberry.type
class InvalidInput(Refusal):
    field: str | None
    rule: str | None


@strawberry.type(description="Not found — or another tenant's, which reads the same")
class NotFound(Refusal):
    kind: str
    field: str | None


@strawberry.type
class ConcurrencyConflict(Refusal):
    pass


CommandResult = Annotated[
    Recorded
    | InvalidTransition
    | RuleViolation
    | ReasonRequired
    | InvalidInput
    | NotFound
    | ConcurrencyConflict,
    strawberry.union("CommandResult"),
]


def refusal(error: errors.LedgerError) -> CommandResult:
    """The typed result of a refused command."""
    code, message = error.code, error.message
    if isinstance(error, errors.InvalidTransition):
        return InvalidTransition(
            code=code,
            message=message,
            entity=error.entity,
            state=error.state,
            command=error.command,
        )
    if isinstance(error, errors.RuleViolation):
        return RuleViolation(code=code, message=message, rule=error.rule)
    if isinstance(error, errors.ReasonRequired):
        return ReasonRequired(code=code, message=message, field=error.field)
    if isinstance(error, errors.InvalidInput):
        return InvalidInput(code=code, message=message, field=error.field, rule=error.rule)
    if isinstance(error, errors.NotFound):
        return NotFound(code=code, message=message, kind=error.kind, field=error.field)
    if isinstance(error, errors.ConcurrencyConflict):
        return ConcurrencyConflict(code=code, message=message)
    return RuleViolation(code=code, message=message, rule=error.rule)


def query_error(error: errors.LedgerError) -> GraphQLError:
    """A query's refusal (bad arguments): a GraphQL error with the code, field and rule."""
    return GraphQLError(
        error.message,
        extensions={"code": error.code, "field": error.field, "rule": error.rule},
    )
