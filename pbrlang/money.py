"""Money: exact pounds and pence. Rounding happens here and nowhere else."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction
from math import lcm

PENNY = Decimal("0.01")
ZERO = Decimal("0.00")

_MODES = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "down": decimal.ROUND_DOWN,
    "up": decimal.ROUND_UP,
}


EXACT_DIGITS = 60  # an exact amount's significant digits at most
# What an amount beyond them is called in an evaluation error (decimal's own text names only classes).
TOO_LARGE = f"an amount too large to be exact (more than {EXACT_DIGITS} digits)"


# For moving the point of an amount already exact (pence to pounds, to the penny): any number of
# digits, so that neither the caller's context (28 digits by default) nor ours rounds a large total.
ANY_SIZE = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def pounds(pence: int) -> Decimal:
    """Whole pence as an amount in pounds, exact at any size."""
    return Decimal(pence).scaleb(-2, ANY_SIZE)


def exact_sum(amounts) -> Decimal:
    """The sum of exact amounts, never rounded, whatever their size and the caller's context."""
    total = Decimal("0.00")
    for amount in amounts:
        total = ANY_SIZE.add(total, amount)
    return total


def exact_context() -> decimal.Context:
    """A context in which any inexact Decimal operation is an error, not a silent rounding."""
    ctx = decimal.Context(prec=EXACT_DIGITS, rounding=decimal.ROUND_HALF_EVEN)
    ctx.traps[decimal.Inexact] = True
    ctx.traps[decimal.FloatOperation] = True
    return ctx


def to_fraction(x) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(x)


def round_money(value, mode: str) -> Decimal:
    """Round an exact amount (Decimal, int or Fraction) to the penny by the contract's rule."""
    if isinstance(value, Fraction):
        pennies = value * 100
        whole, rest = divmod(pennies.numerator, pennies.denominator)  # floor division
        frac = Fraction(rest, pennies.denominator)
        rounded = _round_fraction(whole, frac, mode)
        return (Decimal(rounded) / 100).quantize(PENNY, context=decimal.Context(prec=EXACT_DIGITS))
    return Decimal(value).quantize(PENNY, rounding=_MODES[mode], context=decimal.Context(prec=EXACT_DIGITS))


def to_pence(value, rounding: str) -> int:
    """An exact amount in whole pence, rounded once by the contract's rule."""
    if type(value) is Decimal and value.as_tuple().exponent >= -2:
        return int(value.scaleb(2))
    if type(value) is int:
        return value * 100
    return int(round_money(value, rounding).scaleb(2))


NO_LIMIT = 10**30  # pence: a limit of `none` does not limit


def _round_fraction(whole: int, frac: Fraction, mode: str) -> int:
    # value = whole + frac, 0 <= frac < 1, whole = floor(value)
    if frac == 0:
        return whole
    negative = whole < 0
    if mode == "down":  # towards zero
        return whole + 1 if negative else whole
    if mode == "up":  # away from zero
        return whole if negative else whole + 1
    half = Fraction(1, 2)
    if frac > half:
        return whole + 1
    if frac < half:
        return whole
    if mode == "half_up":  # away from zero
        return whole if negative else whole + 1
    return whole if whole % 2 == 0 else whole + 1  # half_even


def money_text(value: Decimal) -> str:
    return f"{value.quantize(PENNY, context=ANY_SIZE):f}"


def splitter(shares: tuple[tuple[str, Fraction], ...]):
    """A function splitting whole pence between funders exactly: each gets its share rounded
    down to the penny, and the pence left over go one at a time to the largest remainders,
    ties to the funder declared first. Shares are in declared order and add up to 1."""
    if len(shares) == 1:
        name = shares[0][0]
        return lambda pence: ((name, pence),)
    denominator = lcm(*(f.denominator for _, f in shares))
    parts = [(name, f.numerator * (denominator // f.denominator)) for name, f in shares]
    order = range(len(parts))

    def split_pence(pence: int) -> tuple:
        floors = []
        remainders = []
        for _, part in parts:
            whole, rest = divmod(pence * part, denominator)
            floors.append(whole)
            remainders.append(rest)
        left = pence - sum(floors)
        if left:
            for i in sorted(order, key=lambda i: (-remainders[i], i))[:left]:
                floors[i] += 1
        return tuple((name, floors[i]) for i, (name, _) in enumerate(parts))

    return split_pence


def split(amount: Decimal, shares: tuple[tuple[str, Fraction], ...]) -> dict[str, Decimal]:
    """Split an amount in pounds between funders exactly (see `splitter`), at any size: the
    caller's decimal context never rounds it."""
    pence = int(amount.scaleb(2, ANY_SIZE).to_integral_exact(context=ANY_SIZE))
    return {name: pounds(p) for name, p in splitter(shares)(pence)}
