"""Plain data: the only thing that crosses from a submission's process to the grader.

A student's function may return anything: a tensor, an array, a number, an object whose
``__eq__`` always answers ``True``. The submission's process converts what it returns into a
small JSON-able *plain value* with :func:`to_plain`, by explicit rules on exact types, and the
grader's process (which never ran student code) checks that value with :func:`validate` before
comparing it with its own reference. Plain values are tagged dicts:

| kind | fields |
| --- | --- |
| ``none`` | |
| ``bool`` | ``value``: bool |
| ``number`` | ``value``: int, float, or ``"nan"``, ``"inf"``, ``"-inf"`` |
| ``array`` | ``dtype``: ``"float"``, ``"int"`` or ``"bool"``; ``shape``: list of ints; ``data``: flat list |
| ``str`` | ``value``: str |
| ``seq`` | ``items``: list of plain values (a tuple or list) |
| ``map`` | ``items``: dict from str to plain values |
| ``raised`` | ``type``: exception class name; ``message``: str |
| ``unsupported`` | ``type``: the type name of a value that has no plain form |
| ``error`` | ``message``: why there is no value (missing function, time limit, ...) |

Only exact types are converted (a subclass of ``float`` or of ``torch.Tensor`` is
``unsupported``), so no user-defined method runs during the conversion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_ELEMENTS = 200_000  # entries of one array
MAX_ITEMS = 1_000  # entries of one seq or map
MAX_DEPTH = 6
MAX_TEXT = 20_000  # characters of a str or message
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
KINDS = ("none", "bool", "number", "array", "str", "seq", "map", "raised", "unsupported", "error")


class PlainError(ValueError):
    """A value that is not valid plain data."""


def _number(x: float | int) -> float | int | str:
    """A JSON-safe number: finite floats and ints as they are, non-finite ones as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _array(arr: np.ndarray) -> dict[str, Any]:
    if arr.size > MAX_ELEMENTS:
        return {"kind": "unsupported", "type": f"array with {arr.size} entries (more than {MAX_ELEMENTS})"}
    if arr.dtype == np.bool_:
        dtype, data = "bool", [bool(v) for v in arr.ravel().tolist()]
    elif np.issubdtype(arr.dtype, np.integer):
        dtype, data = "int", [int(v) for v in arr.ravel().tolist()]
    elif np.issubdtype(arr.dtype, np.floating):
        dtype, data = "float", [_number(float(v)) for v in arr.astype(np.float64).ravel().tolist()]
    else:
        return {"kind": "unsupported", "type": f"array of dtype {arr.dtype}"}
    return {"kind": "array", "dtype": dtype, "shape": [int(s) for s in arr.shape], "data": data}


def _text(s: str) -> str:
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + "…"


def to_plain(value: Any, depth: int = 0) -> dict[str, Any]:
    """Convert ``value`` to a plain value (see the module's table), by its exact type.

    Accepted: ``None``, ``bool``, ``int``, ``float``, ``str``, NumPy scalars and arrays,
    ``torch.Tensor`` (and ``torch.nn.Parameter``), and tuples, lists and dicts (with str keys)
    of these. Anything else becomes ``{"kind": "unsupported", "type": ...}``.
    """
    kind = type(value)
    if value is None:
        return {"kind": "none"}
    if kind is bool or kind is np.bool_:
        return {"kind": "bool", "value": bool(value)}
    if kind is int:
        return {"kind": "number", "value": value if abs(value) < 2**63 else float(value)}
    if kind is float:
        return {"kind": "number", "value": _number(value)}
    if kind in (np.float16, np.float32, np.float64):
        return {"kind": "number", "value": _number(float(value))}
    if kind in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        return {"kind": "number", "value": int(value)}
    if kind is str:
        return {"kind": "str", "value": _text(value)}
    if kind is np.ndarray:
        return _array(value)
    if depth < MAX_DEPTH and kind in (tuple, list):
        if len(value) > MAX_ITEMS:
            return {"kind": "unsupported", "type": f"{kind.__name__} of {len(value)} items"}
        return {"kind": "seq", "items": [to_plain(v, depth + 1) for v in value]}
    if depth < MAX_DEPTH and kind is dict:
        if len(value) > MAX_ITEMS or any(type(k) is not str for k in value):
            return {"kind": "unsupported", "type": "dict (too large, or with keys that are not str)"}
        return {"kind": "map", "items": {k: to_plain(v, depth + 1) for k, v in value.items()}}
    import torch  # only the submission's process and the grader's references need it

    if kind is torch.Tensor or kind is torch.nn.Parameter:
        if value.is_complex() or value.is_sparse or value.is_quantized:
            return {"kind": "unsupported", "type": f"tensor of dtype {value.dtype}"}
        value = value.detach().cpu()
        return _array((value.double() if value.is_floating_point() else value).numpy())
    return {"kind": "unsupported", "type": kind.__qualname__[:200]}


def raised(exc: BaseException) -> dict[str, Any]:
    """The plain value recording that a call raised ``exc``."""
    return {"kind": "raised", "type": type(exc).__name__[:200], "message": _text(str(exc))}


def error(message: str) -> dict[str, Any]:
    """The plain value recording that no value could be obtained, and why."""
    return {"kind": "error", "message": _text(message)}


# --------------------------------------------------------------------------------------------
# the grader's side: strict validation of data that came from a submission's process


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise PlainError(message)


def _is_number(x: Any) -> bool:
    return (type(x) in (int, float) and (type(x) is int or math.isfinite(x))) or (
        type(x) is str and x in NON_FINITE
    )


def validate(obj: Any, depth: int = 0) -> dict[str, Any]:
    """Check that ``obj`` (parsed JSON) is a well-formed plain value and return it.

    Raises :class:`PlainError` on anything else: unknown kinds, extra or missing fields, wrong
    field types, arrays whose data do not match their shape and dtype, too deep or too large.
    """
    _expect(type(obj) is dict, "not a tagged value")
    _expect(depth <= MAX_DEPTH + 1, "nested too deeply")
    kind = obj.get("kind")
    _expect(type(kind) is str and kind in KINDS, f"unknown kind {str(kind)[:40]!r}")
    fields = {
        "none": set(),
        "bool": {"value"},
        "number": {"value"},
        "array": {"dtype", "shape", "data"},
        "str": {"value"},
        "seq": {"items"},
        "map": {"items"},
        "raised": {"type", "message"},
        "unsupported": {"type"},
        "error": {"message"},
    }[kind]
    _expect(
        set(obj) == fields | {"kind"}, f"{kind}: unexpected fields {sorted(set(obj) ^ (fields | {'kind'}))}"
    )
    if kind == "bool":
        _expect(type(obj["value"]) is bool, "bool: value is not a bool")
    elif kind == "number":
        _expect(_is_number(obj["value"]), "number: value is not a number")
    elif kind in ("str",):
        _expect(type(obj["value"]) is str and len(obj["value"]) <= MAX_TEXT + 1, "str: bad value")
    elif kind in ("raised", "unsupported", "error"):
        for key in fields:
            _expect(type(obj[key]) is str and len(obj[key]) <= MAX_TEXT + 1, f"{kind}: bad {key}")
    elif kind == "array":
        dtype, shape, data = obj["dtype"], obj["shape"], obj["data"]
        _expect(dtype in ("float", "int", "bool"), "array: bad dtype")
        _expect(type(shape) is list and len(shape) <= 8, "array: bad shape")
        _expect(all(type(s) is int and 0 <= s <= MAX_ELEMENTS for s in shape), "array: bad shape")
        _expect(type(data) is list and len(data) == math.prod(shape) <= MAX_ELEMENTS, "array: bad size")
        check = {
            "float": _is_number,
            "int": lambda v: type(v) is int and abs(v) < 2**63,
            "bool": lambda v: type(v) is bool,
        }[dtype]
        _expect(all(check(v) for v in data), f"array: entries are not all of dtype {dtype}")
    elif kind == "seq":
        items = obj["items"]
        _expect(type(items) is list and len(items) <= MAX_ITEMS, "seq: bad items")
        for item in items:
            validate(item, depth + 1)
    elif kind == "map":
        items = obj["items"]
        _expect(type(items) is dict and len(items) <= MAX_ITEMS, "map: bad items")
        for key, item in items.items():
            _expect(type(key) is str and len(key) <= 200, "map: bad key")
            validate(item, depth + 1)
    return obj


def as_array(value: dict[str, Any]) -> np.ndarray | None:
    """A validated plain value as a float64 array: arrays, numbers (0-d), and seqs of numbers or
    equally shaped arrays; ``None`` if it has no numeric array form."""
    kind = value["kind"]
    if kind == "number":
        v = value["value"]
        return np.array(NON_FINITE[v] if type(v) is str else float(v))
    if kind == "bool":
        return np.array(float(value["value"]))
    if kind == "array":
        data = [NON_FINITE[v] if type(v) is str else float(v) for v in value["data"]]
        return np.array(data, dtype=np.float64).reshape(value["shape"])
    if kind == "seq" and value["items"]:
        parts = [as_array(item) for item in value["items"]]
        if any(p is None for p in parts) or len({p.shape for p in parts}) != 1:
            return None
        return np.stack(parts)
    return None


def describe(value: dict[str, Any]) -> str:
    """A short human description of a validated plain value, for feedback."""
    kind = value["kind"]
    if kind == "none":
        return "None"
    if kind in ("bool", "number"):
        return repr(value["value"]) if kind == "bool" else str(value["value"])
    if kind == "array":
        return f"an array of shape {tuple(value['shape'])}"
    if kind == "str":
        text = value["value"]
        return repr(text if len(text) <= 60 else text[:60] + "…")
    if kind == "seq":
        return f"a sequence of {len(value['items'])} items"
    if kind == "map":
        return f"a dict with keys {sorted(value['items'])[:8]}"
    if kind == "raised":
        return f"an exception {value['type']}: {value['message'][:300]}"
    if kind == "unsupported":
        return f"an object of type {value['type']} (return tensors, arrays or numbers)"
    return value["message"]
