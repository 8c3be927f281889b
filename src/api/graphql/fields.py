"""Typed forms of `strawberry.field`, `strawberry.mutation` and `strawberry.subscription`.

Strawberry types those decorators, when called with options, as returning `Any`, which
`mypy --strict` reports as an untyped decorator on every resolver. These keep the resolver's
own type for the checker; at run time they are Strawberry's decorators, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import strawberry
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission

__all__ = ["field", "mutation", "subscription"]

F = TypeVar("F", bound=Callable[..., Any])


def field(
    *,
    description: str | None = None,
    permission_classes: Sequence[type[BasePermission]] = (),
    extensions: Sequence[FieldExtension] = (),
) -> Callable[[F], F]:
    decorate: Callable[[F], F] = strawberry.field(
        description=description,
        permission_classes=list(permission_classes),
        extensions=list(extensions),
    )
    return decorate


def mutation(
    *, description: str | None = None, permission_classes: Sequence[type[BasePermission]] = ()
) -> Callable[[F], F]:
    decorate: Callable[[F], F] = strawberry.mutation(
        description=description, permission_classes=list(permission_classes)
    )
    return decorate


def subscription(
    *, description: str | None = None, permission_classes: Sequence[type[BasePermission]] = ()
) -> Callable[[F], F]:
    decorate: Callable[[F], F] = strawberry.subscription(
        description=description, permission_classes=list(permission_classes)
    )
    return decorate
