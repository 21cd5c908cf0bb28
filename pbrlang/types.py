"""The language's types: what a value is, for the checker and for messages."""

from __future__ import annotations

from .frozen import Frozen


class Type(Frozen):
    """kind: integer decimal money date days months boolean text none
    enum band record records spells. `name` names the enum, band or table."""

    kind: str
    name: str | None = None

    def __init__(self, kind: str, name: str | None = None) -> None:
        self.__dict__["kind"] = kind
        self.__dict__["name"] = name

    def __str__(self) -> str:
        if self.kind == "enum":
            return f"`{self.name}` value"  # "`payment_group` value"
        if self.kind == "band":
            return f"`{self.name}` band"
        if self.kind == "record":
            return f"`{self.name}` record"
        if self.kind == "records":
            return f"`{self.name}` records"
        return {"days": "days (a duration)", "months": "months (a duration)", "none": "none"}.get(self.kind, self.kind)


INTEGER = Type("integer")
DECIMAL = Type("decimal")
MONEY = Type("money")
DATE = Type("date")
DAYS = Type("days")
MONTHS = Type("months")
BOOLEAN = Type("boolean")
TEXT = Type("text")
NONE = Type("none")
SPELLS = Type("spells")

# Field types a table may declare, besides enumerations and references.
FIELD_TYPES = {"text": TEXT, "integer": INTEGER, "decimal": DECIMAL, "money": MONEY, "date": DATE, "boolean": BOOLEAN}

NUMBERS = {"integer", "decimal"}
ORDERED = {"integer", "decimal", "money", "date", "days", "text"}


def enum(name: str) -> Type:
    return Type("enum", name)


def band(name: str) -> Type:
    return Type("band", name)


def record(table: str) -> Type:
    return Type("record", table)


def records(table: str) -> Type:
    return Type("records", table)


def unify(a: Type, b: Type) -> Type | None:
    """The type of a value that may be either: `none` fits anything, integer widens to decimal."""
    if a == b:
        return a
    if a == NONE:
        return b
    if b == NONE:
        return a
    if {a.kind, b.kind} == {"integer", "decimal"}:
        return DECIMAL
    return None
