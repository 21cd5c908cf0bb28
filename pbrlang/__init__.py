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

# Each name is imported when first asked for, so that `import pbrlang.cli` starts quickly:
# `pbr` pauses the cycle collector before the pipeline's modules are imported (see cli.main),
# and `pbr check` never needs the evaluator's half.
_WHERE = {
    "Contract": "contract", "load": "contract", "loads": "contract",
    "Cut": "statement", "Payment": "statement", "Statement": "statement",
    **dict.fromkeys(("ContractCheckError", "ContractError", "ContractSyntaxError", "DataError", "Diagnostic",
                     "EvaluationError", "EvaluationErrors", "PbrError", "UsageError"), "errors"),
}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


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
