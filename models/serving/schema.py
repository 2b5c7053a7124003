"""Turning request bodies into feature columns, with every problem reported at once.

Pure Python on purpose (no numpy here): it runs once per request on the event loop, and a
plain loop over a handful of fields is faster than building arrays for one row. The output
is column-oriented (feature -> list of values) so the batcher can concatenate requests
cheaply and the model gets one DataFrame per batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# The V2 datatypes a numeric feature may arrive as; everything becomes float64.
NUMERIC_DATATYPES = frozenset(
    {
        "FP64",
        "FP32",
        "FP16",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
    }
)
V2_OUTPUTS = ("predict", "predict_proba")
MAX_DETAILS = 50  # bound the error body: a 10k-row request with one bad column is one line per row


class InputError(Exception):
    """The request is not acceptable: HTTP status plus pydantic-style details."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class Columns:
    """Validated rows, column-wise: numeric values are floats (NaN for null), categorical str|None.
    """

    data: dict[str, list[Any]]
    rows: int


@dataclass
class V2Request:
    columns: Columns
    request_id: str | None
    outputs: tuple[str, ...] | None  # None: the defaults for the task


@dataclass
class _Problems:
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, loc: list[Any], kind: str, msg: str) -> None:
        if len(self.items) < MAX_DETAILS:
            self.items.append({"loc": loc, "type": kind, "msg": msg})

    def raise_if_any(self, message: str) -> None:
        if self.items:
            raise InputError(422, message, self.items)


def _numeric(value: Any) -> float | None:
    """The float for a numeric field, or None if the value has the wrong type.

    NaN and null both mean "missing" (the pipeline's imputer fills them); infinities are
    refused because scaling turns them into NaN predictions nobody asked for.
    """
    if value is None:
        return math.nan
    if type(value) is float:
        return value if not math.isinf(value) else None
    if type(value) is int:
        return float(value)
    return None


def parse_records(body: Any, numeric: tuple[str, ...], categorical: tuple[str, ...]) -> Columns:
    """`{"instances": [{feature: value}, ...]}` or a bare list of records."""
    if isinstance(body, dict):
        extra = sorted(set(body) - {"instances"})
        if "instances" not in body or extra:
            raise InputError(
                422,
                "expected {\"instances\": [...]} or a list of records",
                [{"loc": [k], "type": "extra_forbidden", "msg": "unexpected key"} for k in extra]
                or [{"loc": ["instances"], "type": "missing", "msg": "field required"}],
            )
        records = body["instances"]
        prefix = "instances"
    else:
        records = body
        prefix = "body"
    if not isinstance(records, list):
        raise InputError(422, "instances must be a list of records",
                         [{"loc": [prefix], "type": "list_type", "msg": "expected a list"}])
    if not records:
        raise InputError(
            422,
            "instances is empty",
            [{"loc": [prefix], "type": "too_short", "msg": "give at least one record"}],
        )
    known = set(numeric) | set(categorical)
    data: dict[str, list[Any]] = {name: [] for name in (*numeric, *categorical)}
    problems = _Problems()
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.add([prefix, i], "dict_type", "expected an object of feature values")
            continue
        for name in numeric:
            if name not in record:
                problems.add([prefix, i, name], "missing", "field required")
                continue
            value = _numeric(record[name])
            if value is None:
                problems.add([prefix, i, name], "float_type",
                             f"expected a finite number or null, got {_kind(record[name])}")
                continue
            data[name].append(value)
        for name in categorical:
            if name not in record:
                problems.add([prefix, i, name], "missing", "field required")
                continue
            value = record[name]
            if value is not None and type(value) is not str:
                problems.add([prefix, i, name], "string_type",
                             f"expected a string or null, got {_kind(value)}")
                continue
            data[name].append(value)
        if len(record) != len(known) or not known.issuperset(record):
            for key in record:
                if key not in known:
                    problems.add([prefix, i, key], "extra_forbidden", "not a feature of this model")
    problems.raise_if_any("invalid instances")
    return Columns(data, len(records))


def parse_v2(body: Any, numeric: tuple[str, ...], categorical: tuple[str, ...],
             classifier: bool) -> V2Request:
    """An Open Inference Protocol request with one named input per feature (MLServer's `pd` codec).
    """
    if not isinstance(body, dict):
        raise InputError(422, "the inference request must be a JSON object",
                         [{"loc": [], "type": "dict_type", "msg": "expected an object"}])
    problems = _Problems()
    params = body.get("parameters") or {}
    content_type = params.get("content_type") if isinstance(params, dict) else None
    if content_type not in (None, "pd"):
        problems.add(["parameters", "content_type"], "value_error",
                     f"only 'pd' (one input per feature) is supported, got {content_type!r}")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InputError(
            422,
            "invalid inference request",
            [{"loc": ["inputs"], "type": "missing", "msg": "give a non-empty list of inputs"}],
        )
    num, cat = set(numeric), set(categorical)
    data: dict[str, list[Any]] = {}
    rows: int | None = None
    seen: set[str] = set()
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            problems.add(["inputs", i], "dict_type", "each input needs a string 'name'")
            continue
        name = tensor["name"]
        loc: list[Any] = ["inputs", i, name]
        if name not in num and name not in cat:
            problems.add(loc, "extra_forbidden", "not a feature of this model")
            continue
        if name in seen:
            problems.add(loc, "value_error", "input given twice")
            continue
        seen.add(name)
        values = _flatten(tensor.get("data"))
        if values is None:
            problems.add([*loc, "data"], "list_type", "expected a list (flat or [[v], ...])")
            continue
        shape = tensor.get("shape")
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
                or not all(type(d) is int for d in shape)
                or (len(shape) == 2 and shape[1] != 1) or shape[0] != len(values)):
            problems.add(
                [*loc, "shape"],
                "value_error",
                f"shape must be [N] or [N, 1] with N = {len(values)} data values, got {shape!r}",
            )
            continue
        datatype = tensor.get("datatype")
        column: list[Any] = []
        if name in num:
            if datatype not in NUMERIC_DATATYPES:
                problems.add(
                    [*loc, "datatype"],
                    "value_error",
                    f"numeric feature: expected FP64 (or another numeric type), got {datatype!r}",
                )
                continue
            for j, v in enumerate(values):
                f = _numeric(v)
                if f is None:
                    problems.add([*loc, "data", j], "float_type",
                                 f"expected a finite number, got {_kind(v)}")
                    break
                column.append(f)
            else:
                data[name] = column
        else:
            if datatype != "BYTES":
                problems.add([*loc, "datatype"], "value_error",
                             f"categorical feature: expected BYTES, got {datatype!r}")
                continue
            for j, v in enumerate(values):
                if v is not None and type(v) is not str:
                    problems.add(
                        [*loc, "data", j], "string_type", f"expected a string, got {_kind(v)}"
                    )
                    break
                column.append(v)
            else:
                data[name] = column
        if rows is None:
            rows = len(values)
        elif len(values) != rows:
            problems.add(
                [*loc, "shape"],
                "value_error",
                f"all inputs need the same number of rows: {len(values)} here, {rows} before",
            )
    for name in (*numeric, *categorical):
        if name not in seen:
            problems.add(["inputs", name], "missing", "input required")
    outputs = _requested_outputs(body.get("outputs"), classifier, problems)
    problems.raise_if_any("invalid inference request")
    if not rows:
        raise InputError(422, "invalid inference request",
                         [{"loc": ["inputs"], "type": "too_short", "msg": "give at least one row"}])
    request_id = body.get("id")
    return V2Request(
        Columns(data, rows), request_id if isinstance(request_id, str) else None, outputs
    )


def _requested_outputs(raw: Any, classifier: bool, problems: _Problems) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        problems.add(["outputs"], "list_type", "expected a list of {\"name\": ...}")
        return None
    allowed = V2_OUTPUTS if classifier else V2_OUTPUTS[:1]
    names: list[str] = []
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in allowed:
            problems.add(["outputs", i], "value_error",
                         f"unknown output {name!r}; this model offers {', '.join(allowed)}")
        else:
            names.append(name)
    return tuple(names) or None


def _flatten(data: Any) -> list[Any] | None:
    if not isinstance(data, list):
        return None
    if data and isinstance(data[0], list):
        flat: list[Any] = []
        for row in data:
            if not isinstance(row, list):
                return None
            flat.extend(row)
        return flat
    return data


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number" if not (isinstance(value, float) and math.isinf(value)) else "infinity"
    if value is None:
        return "null"
    return f"a JSON {type(value).__name__.replace('dict', 'object').replace('list', 'array')}"


def v2_datatype(values: list[Any]) -> str:
    """The V2 datatype of a list of outputs (predictions or class labels)."""
    first = values[0] if values else 0.0
    if isinstance(first, bool):
        return "BOOL"
    if isinstance(first, int):
        return "INT64"
    if isinstance(first, str):
        return "BYTES"
    return "FP64"


def model_metadata(config: Any, model: Any) -> dict[str, Any]:
    """The V2 model metadata answer for a ServeConfig and its LoadedModel (None: not loaded)."""
    inputs: list[dict[str, Any]] = [
        {"name": n, "datatype": "FP64", "shape": [-1, 1]} for n in config.numeric]
    inputs += [{"name": n, "datatype": "BYTES", "shape": [-1, 1],
                "parameters": {"content_type": "str"}} for n in config.categorical]
    outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": "FP64", "shape": [-1, 1]}]
    if model is not None and model.classifier:
        outputs[0]["datatype"] = v2_datatype(list(model.classes or ()))
        outputs.append({"name": "predict_proba", "datatype": "FP64",
                        "shape": [-1, len(model.classes or ())]})
    return {"name": config.name, "versions": [model.version] if model else [],
            "platform": "sklearn", "inputs": inputs, "outputs": outputs,
            "parameters": {"content_type": "pd",
                           "classes": list(model.classes) if model and model.classes else None}}
