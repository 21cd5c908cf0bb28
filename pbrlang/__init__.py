"""pbrlang: the language payment-by-results contracts are written in.

    import datetime, pbrlang
    contract = pbrlang.load("examples/work-programme/contract.pbr")
    statement = contract.evaluate(["data/"], as_of=datetime.date(2014, 6, 30))
    print(statement.to_json())

The pipeline, one module per stage: parser (text -> nodes), checker (nodes ->
checked program), compiler (program -> closures), data (files -> tables),
evaluator (closures + tables -> statement).
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
from .statement import Cut, Payment, Statement

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
