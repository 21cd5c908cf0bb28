"""The few helpers every oracle may share (README "Data conventions" and "Money").

Only mechanical things live here: reading a table, ISO dates, calendar-month
arithmetic, money formatting and the largest-remainder split.  Every rule of a
scheme is written out in that scheme's own module.
"""

from __future__ import annotations

import calendar
import csv
import datetime
import json
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path

PENNY = Decimal("0.01")


def _cell(value) -> str:
    """A JSON Lines value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def read_table(data_dir, name: str, required: bool = True) -> list[dict]:
    """Rows of table `name`: `<name>.csv` (header row) or `<name>.jsonl`.

    Every value comes back as a string ('' for an empty cell / null), so the
    oracles parse CSV and JSON Lines input the same way.
    """
    data_dir = Path(data_dir)
    csv_path = data_dir / f"{name}.csv"
    jsonl_path = data_dir / f"{name}.jsonl"
    if csv_path.exists():
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            return [{k: (v if v is not None else "") for k, v in row.items()} for row in csv.DictReader(f)]
    if jsonl_path.exists():
        rows = []
        with open(jsonl_path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rows.append({k: _cell(v) for k, v in json.loads(line).items()})
        return rows
    if required:
        raise FileNotFoundError(f"table {name!r} not found in {data_dir} (.csv or .jsonl)")
    return []


def parse_date(text: str, what: str = "date") -> datetime.date:
    """A strict ISO `YYYY-MM-DD` date; anything else is invalid data."""
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"invalid {what}: {text!r}")
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid {what}: {text!r}") from exc


def parse_optional_date(text: str, what: str = "date") -> datetime.date | None:
    """An ISO date, or None for an empty cell."""
    if text == "":
        return None
    return parse_date(text, what)


def add_days(d: datetime.date, n: int) -> datetime.date:
    return d + datetime.timedelta(days=n)


def add_months(d: datetime.date, months: int) -> datetime.date:
    """`d + months` calendar months; a day the target month lacks becomes its last day."""
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    last = calendar.monthrange(year, month)[1]
    return datetime.date(year, month, min(d.day, last))


def period(d: datetime.date) -> str:
    """The calendar month (`YYYY-MM`) a payment on day `d` belongs to."""
    return f"{d.year:04d}-{d.month:02d}"


def money(amount) -> str:
    """Pounds as a string with exactly two decimals, e.g. '1200.00'."""
    q = Decimal(amount).quantize(PENNY, rounding=ROUND_HALF_UP)
    if q == 0:
        q = Decimal("0.00")
    return f"{q:.2f}"


def largest_remainder_split(amount: Decimal, shares: list[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Split `amount` exactly between funders (README "Splits between funders").

    `shares` is [(funder, percent), ...] in the funders' declared order, percents
    adding up to 100.  Each funder first gets its exact share rounded down to the
    penny; the pennies left go one at a time to the largest remainders, ties to
    the funder declared first.
    """
    pence = int((Decimal(amount) * 100).to_integral_value())
    if Decimal(pence) != Decimal(amount) * 100:
        raise ValueError(f"amount {amount} is not a whole number of pence")
    floors = []
    remainders = []
    for _name, percent in shares:
        exact = Decimal(pence) * Decimal(percent) / Decimal(100)
        down = int(exact.to_integral_value(rounding=ROUND_FLOOR))
        floors.append(down)
        remainders.append(exact - down)
    left = pence - sum(floors)
    order = sorted(range(len(shares)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return {name: Decimal(floors[i]) / 100 for i, (name, _p) in enumerate(shares)}
