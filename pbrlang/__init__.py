"""pbrlang: the language payment-by-results contracts are written in.

    import datetime, pbrlang
    contract = pbrlang.load("examples/work-programme/contract.pbr")
    statement = contract.evaluate(["data/"], as_of=datetime.date(2014, 6, 30))
    print(statement.to_json())

The pipeline, one module per stage: parser (text -> nodes), checker (nodes ->
checked program), compiler (program -> generated functions), data (files -> tables),
evaluator (functions + tables -> statement).
"""

from __future__ import annotations

from .contract import Contract, load, loads
from .errors import (
    ContractCheckError,
    ContractError,
    ContractSyntaxError,
    DataError,
    Diagnostic,
    EvaluationError,
    EvaluationErrors,
    PbrError,
    UsageError,
)


def __getattr__(name: str):
    # The statement's classes are imported when first asked for: `pbr check` never needs them.
    if name in ("Cut", "Payment", "Statement"):
        from . import statement

        return getattr(statement, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Contract",
    "ContractCheckError",
    "ContractError",
    "ContractSyntaxError",
    "Cut",
    "DataError",
    "Diagnostic",
    "EvaluationError",
    "EvaluationErrors",
    "Payment",
    "PbrError",
    "Statement",
    "UsageError",
    "load",
    "loads",
]
