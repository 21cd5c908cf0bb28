"""Calendar rules, written once: days as ordinals, month arithmetic, periods, spells.

Dates are carried as proleptic Gregorian ordinals (int) inside the evaluator,
so day arithmetic is integer arithmetic; they become ISO text only in the
statement.
"""

from __future__ import annotations

import calendar as _cal
import datetime
import functools
from bisect import bisect_right


def iso(day: int) -> str:
    return datetime.date.fromordinal(day).isoformat()


def ordinal(text: str) -> int:
    return datetime.date.fromisoformat(text).toordinal()


@functools.lru_cache(maxsize=65536)
def add_months(day: int, months: int) -> int:
    """The same day `months` later (or earlier); a day the month lacks becomes its last day."""
    d = datetime.date.fromordinal(day)
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    last = _cal.monthrange(year, month)[1]
    return datetime.date(year, month, min(d.day, last)).toordinal()


@functools.lru_cache(maxsize=65536)
def month_label(day: int) -> str:
    d = datetime.date.fromordinal(day)
    return f"{d.year:04d}-{d.month:02d}"


@functools.lru_cache(maxsize=65536)
def financial_year_label(day: int) -> str:
    """UK financial year, 1 April to 31 March, written `2020-21`."""
    d = datetime.date.fromordinal(day)
    first = d.year if d.month >= 4 else d.year - 1
    return f"{first:04d}-{(first + 1) % 100:02d}"


def join_runs(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and join intervals that overlap or touch (next start <= previous end + 1). The list
    is the caller's own: it is sorted in place (and returned itself when it holds fewer than two)."""
    if len(intervals) < 2:
        return intervals
    intervals.sort()
    runs = []
    ps, pe = intervals[0]
    for s, e in intervals:
        if s <= pe + 1:
            if e > pe:
                pe = e
        else:
            runs.append((ps, pe))
            ps, pe = s, e
    runs.append((ps, pe))
    return runs


_INF = float("inf")  # sorts after any day: (day, _INF) comes after every run starting that day


class Spells:
    """A set of days as joined runs, plus days that do not count (e.g. school holidays).

    Skipped days inside a run do not count towards its length; a gap made only of
    skipped days does not break a run.
    """

    __slots__ = ("runs", "skip")

    def __init__(self, runs: list[tuple[int, int]], skip: list[tuple[int, int]] | None = None):
        self.runs = runs
        self.skip = skip

    def counted_from(self, day: int) -> "Spells":
        runs = [(max(s, day), e) for s, e in self.runs if e >= day]
        return Spells(runs, self.skip)

    def starting_from(self, day: int) -> "Spells":
        return Spells([r for r in self.runs if r[0] >= day], self.skip)

    def not_counting(self, other: "Spells") -> "Spells":
        skip = join_runs(list(other.runs) + list(self.skip or []))
        runs: list[tuple[int, int]] = []
        for s, e in self.runs:
            if runs and self._gap_skipped(runs[-1][1] + 1, s - 1, skip):
                runs[-1] = (runs[-1][0], max(e, runs[-1][1]))
            else:
                runs.append((s, e))
        return Spells(runs, skip)

    @staticmethod
    def _gap_skipped(first: int, last: int, skip: list[tuple[int, int]]) -> bool:
        if first > last:
            return True
        i = bisect_right(skip, (first, float("inf"))) - 1
        return i >= 0 and skip[i][0] <= first and skip[i][1] >= last

    def counted_days(self, start: int, end: int) -> int:
        """How many counted days lie in start..end."""
        total = end - start + 1
        for hs, he in self.skip or ():
            lo, hi = max(hs, start), min(he, end)
            if lo <= hi:
                total -= hi - lo + 1
        return max(total, 0)

    def nth_counted_day(self, start: int, end: int, count: int) -> int | None:
        """The day in start..end on which `count` counted days are reached, if any."""
        if count <= 0:
            return start
        skip = self.skip
        if not skip:
            day = start + count - 1
            return day if day <= end else None
        pos, remaining = start, count
        i = max(bisect_right(skip, (start, float("inf"))) - 1, 0)
        while i < len(skip) and pos <= end:
            hs, he = skip[i]
            if he < pos:
                i += 1
                continue
            if hs > pos:
                stretch_end = min(hs - 1, end)
                length = stretch_end - pos + 1
                if length >= remaining:
                    return pos + remaining - 1
                remaining -= length
            pos = max(pos, he + 1)
            i += 1
        if pos <= end and end - pos + 1 >= remaining:
            return pos + remaining - 1
        return None

    def first_day_lasting_days(self, days: int) -> int | None:
        if not self.skip:
            for s, e in self.runs:
                if s + days - 1 <= e:
                    return s + days - 1 if days > 0 else s
            return None
        for s, e in self.runs:
            day = self.nth_counted_day(s, e, days)
            if day is not None:
                return day
        return None

    def first_day_lasting_months(self, months: int) -> int | None:
        for s, e in self.runs:
            day = add_months(s, months) - 1
            if day <= e:
                return day
        return None

    def run_containing(self, day: int) -> tuple[int, int] | None:
        i = bisect_right(self.runs, (day, _INF)) - 1
        if i >= 0 and self.runs[i][0] <= day <= self.runs[i][1]:
            return self.runs[i]
        return None

    def covers_through(self, anchor: int, day: int) -> bool:
        """Whether the run holding `anchor` goes on unbroken up to `day`."""
        run = self.run_containing(anchor)
        return run is not None and run[1] >= day

    def __eq__(self, other) -> bool:
        return isinstance(other, Spells) and self.runs == other.runs and self.skip == other.skip

    def __repr__(self) -> str:
        return f"Spells({[(iso(s), iso(e)) for s, e in self.runs]})"
