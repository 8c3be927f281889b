"""Deterministic ids from natural keys, so a repeated create is the same stream, not a twin."""

from __future__ import annotations

from uuid import UUID, uuid5

__all__ = ["NAMESPACE", "natural_id"]

NAMESPACE = UUID("6f1d3c2e-5b7a-4c1e-9d0f-2a8b4e6c1f30")


def natural_id(kind: str, *parts: str) -> UUID:
    """The id of the `kind` object whose natural key is `parts` (case and spacing preserved)."""
    return uuid5(NAMESPACE, "\x1f".join((kind, *parts)))
