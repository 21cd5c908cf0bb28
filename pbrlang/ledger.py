"""What has been paid already: comparing a statement with the previous run's, so nothing is paid twice.

The ledger is the previous run's full statement (`pbr eval --format json`).
Each payment is known by (subject, outcome, occurrence). The new statement
stays a full statement, so it is the next run's ledger, and it adds for each
payment what was paid before and what is due now (its amount less that); a
payment the ledger has but the new run no longer finds due is listed as
withdrawn, with the whole of it to be clawed back. Evaluating again with the
same ledger gives the same figures; evaluating with the new statement as the
ledger finds nothing due.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

import attrs

from .errors import UsageError
from .money import ANY_SIZE


@attrs.frozen
class PaidBefore:
    """One payment in the ledger: what was paid, and each funder's part, in pence."""

    date: str
    amount: int
    funders: tuple[tuple[str, int], ...]


@attrs.frozen
class Ledger:
    file: str
    contract: str
    as_of: str
    payments: dict  # (subject, outcome, occurrence) -> PaidBefore


def _pence(text, where: str) -> int:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        raise UsageError(f"{where}: {text!r} is not an amount") from None
    # A statement writes digits only: an exponent (1e999999999) could ask for more digits than memory holds.
    if not value.is_finite() or "e" in str(text).lower() or value != value.quantize(Decimal("0.01"), context=ANY_SIZE):
        raise UsageError(f"{where}: {text!r} is not an amount in pounds and pence")
    return int(value.scaleb(2, ANY_SIZE))


def read(path: str | Path) -> Ledger:
    """Read a previous statement as a ledger; anything malformed is a UsageError naming where."""
    path = Path(path)
    try:
        tree = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such ledger (a previous statement)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path}: is not a JSON statement ({err})") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("payments"), list):
        raise UsageError(f"{path}: is not a statement (no list of payments)")
    payments: dict = {}
    for i, p in enumerate(tree["payments"], start=1):
        where = f"{path}: payment {i}"
        if not isinstance(p, dict) or not {"subject", "outcome", "amount"} <= set(p):
            raise UsageError(f"{where}: needs subject, outcome and amount")
        occurrence = p.get("occurrence", 0) or 0
        if type(occurrence) is not int or occurrence < 0:
            raise UsageError(f"{where}: occurrence {occurrence} is not a whole number")
        key = (str(p["subject"]), str(p["outcome"]), occurrence)
        if key in payments:
            raise UsageError(f"{where}: {key[0]} / {key[1]} appears twice")
        funders = p.get("funders", {})
        if not isinstance(funders, dict):
            raise UsageError(f"{where}: funders is not a mapping")
        payments[key] = PaidBefore(str(p.get("date", "")), _pence(p["amount"], where),
                                   tuple((str(f), _pence(v, where)) for f, v in funders.items()))
    return Ledger(str(path), str(tree.get("contract", "")), str(tree.get("as_of", "")), payments)
