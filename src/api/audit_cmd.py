"""`shipledger verify` and `shipledger checkpoint`: tamper evidence for auditors (PRODUCT §7).

`verify` first links any new events into the hash chain, then recomputes the chain from the
stored rows: exit 0 with the verified position and head hash, or exit 1 naming the first
position that does not match and why. `--checkpoint FILE` also checks a signed checkpoint
(a forged one is refused) and that the log still extends it. `checkpoint` signs the chain's
head with the key in SHIPLEDGER_CHECKPOINT_KEY. Both apply pending migrations first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ledger.application import Ledger
from ledger.errors import InvalidInput
from projections.audit import (
    KEY_ENV,
    VerifyResult,
    checkpoint,
    checkpoint_key,
    load_checkpoint,
    verify,
)
from projections.chain import Chainer
from projections.db import Database
from projections.migrations import migrate

__all__ = ["EXIT_TAMPERED", "add_parser", "cmd_checkpoint", "cmd_verify"]

#: The log does not match its chain (or no longer extends the checkpoint).
EXIT_TAMPERED = 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify_cmd = commands.add_parser(
        "verify",
        help="check that the ledger has not been altered (hash chain, signed checkpoint)",
        description=(
            "Links new events into the hash chain, then recomputes the chain from the stored "
            "rows and names the first position that does not match: changed, missing, "
            "reordered, inserted — or, against a checkpoint, truncated or diverged. "
            "Exit 0 when the log verifies, 1 when it does not."
        ),
    )
    verify_cmd.add_argument(
        "--checkpoint",
        metavar="FILE",
        default=None,
        help=f"a signed checkpoint the log must still extend (key in ${KEY_ENV})",
    )
    verify_cmd.add_argument("--json", action="store_true", help="the result as JSON")
    verify_cmd.set_defaults(func=cmd_verify)

    checkpoint_cmd = commands.add_parser(
        "checkpoint",
        help="sign the chain's head (position, hash, time) with HMAC-SHA256",
        description=(
            f"Brings the hash chain up to the log's head and writes a checkpoint signed with "
            f"the key in ${KEY_ENV}; a copy is kept in the ledger_checkpoints table."
        ),
    )
    checkpoint_cmd.add_argument(
        "--out", metavar="FILE", default=None, help="write it here (default: standard output)"
    )
    checkpoint_cmd.set_defaults(func=cmd_checkpoint)


def cmd_verify(args: argparse.Namespace) -> int:
    document = None
    key = None
    if args.checkpoint is not None:  # refuse a bad file or a missing key before any work
        document = load_checkpoint(_read(args.checkpoint), source=args.checkpoint)
        key = checkpoint_key()
    ledger, db = _open(args)
    try:
        Chainer(ledger, db).catch_up()
        result = verify(ledger, db, document, key=key)
    finally:
        db.close()
        ledger.close()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _write(result)
    return 0 if result.ok else EXIT_TAMPERED


def cmd_checkpoint(args: argparse.Namespace) -> int:
    key = checkpoint_key()
    ledger, db = _open(args)
    try:
        document = checkpoint(ledger, db, key)
    finally:
        db.close()
        ledger.close()
    text = json.dumps(document, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as error:
            raise InvalidInput(
                f"cannot write {args.out}: {error.strerror}", field="--out"
            ) from None
        print(f"checkpoint at position {document['position']} written to {args.out}")
    return 0


def _open(args: argparse.Namespace) -> tuple[Ledger, Database]:
    ledger = Ledger(args.db)
    db = Database(args.db)
    try:
        migrate(db)
    except BaseException:
        db.close()
        ledger.close()
        raise
    return ledger, db


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"file not found: {path}", field="--checkpoint") from None
    except (OSError, UnicodeDecodeError):
        raise InvalidInput(f"cannot read {path} as UTF-8 text", field="--checkpoint") from None


def _write(result: VerifyResult) -> None:
    out: list[str] = []
    if result.ok:
        out.append(
            f"verified: the log matches its chain up to position {result.position} "
            f"({result.checked} event(s))"
        )
        out.append(f"head hash: {result.hash}")
        if result.checkpoint is not None:
            signed = result.checkpoint
            out.append(
                f"checkpoint: the log extends the checkpoint at position {signed.position} "
                f"(signed {signed.time})"
            )
    else:
        problem = result.problem
        assert problem is not None
        out.append(f"TAMPERED at position {problem.position}: {problem.reason} — {problem.detail}")
        out.append(f"verified up to position {result.position} (hash {result.hash})")
    if result.unchained:
        out.append(f"unchained: {result.unchained} event(s) after the chain's head")
    print("\n".join(out))
