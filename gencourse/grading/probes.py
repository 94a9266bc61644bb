"""Probes: calls of a student's function on inputs that the grader chose, described as plain data.

A probe names a function (or a variable) of the student's notebook and its arguments as *input
specs*, JSON-able dicts that both processes turn into the same objects with :func:`build`:

| spec | builds |
| --- | --- |
| ``{"spec": "tensor", "data", "shape", "dtype", "grad"}`` | a ``torch.Tensor`` (``requires_grad`` if ``grad``) |
| ``{"spec": "ndarray", "data", "shape", "dtype"}`` | a NumPy array |
| ``{"spec": "literal", "value"}`` | the JSON value itself (a number, a string, a list, ...) |
| ``{"spec": "mlp", "layers", "activation", "flatten", "squeeze", "grad"}`` | a :class:`ProbeMLP` with the given weights |

The submission's process calls the student's function with :func:`evaluate`, the grader's process
calls its reference the same way, and the two plain results are compared by the grader. With
``grad``, a probe also returns the gradients of the sum of the output with respect to every input
built with ``grad=True`` (tensors, and all parameters of networks), which checks that the
student's computation is differentiable and correct to first order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gencourse.grading.plain import raised, to_plain

TENSOR_DTYPES = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64, "bool": torch.bool}
ARRAY_DTYPES = {"float64": np.float64, "float32": np.float32, "int64": np.int64, "bool": np.bool_}
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sin": torch.sin, "softplus": nn.functional.softplus}


# --------------------------------------------------------------------------------------------
# specs: made by the grader (hidden tests), turned into objects by both processes


def tensor(values: Any, dtype: str = "float64", grad: bool = False) -> dict[str, Any]:
    """The spec of a torch tensor with these values (nested lists or an array)."""
    if dtype not in TENSOR_DTYPES:
        raise ValueError(f"unknown tensor dtype {dtype!r}; known: {sorted(TENSOR_DTYPES)}")
    arr = np.asarray(values, dtype=ARRAY_DTYPES[dtype])
    return {
        "spec": "tensor",
        "data": arr.ravel().tolist(),
        "shape": list(arr.shape),
        "dtype": dtype,
        "grad": grad,
    }


def ndarray(values: Any, dtype: str = "float64") -> dict[str, Any]:
    """The spec of a NumPy array with these values."""
    if dtype not in ARRAY_DTYPES:
        raise ValueError(f"unknown array dtype {dtype!r}; known: {sorted(ARRAY_DTYPES)}")
    arr = np.asarray(values, dtype=ARRAY_DTYPES[dtype])
    return {"spec": "ndarray", "data": arr.ravel().tolist(), "shape": list(arr.shape), "dtype": dtype}


def literal(value: Any) -> dict[str, Any]:
    """The spec of a plain JSON value passed as it is (int, float, str, bool, None, lists)."""
    return {"spec": "literal", "value": value}


def mlp(
    rng: np.random.Generator,
    dims: Sequence[int],
    activation: str = "tanh",
    flatten: bool = False,
    squeeze: bool = False,
    grad: bool = False,
    scale: float = 1.0,
) -> dict[str, Any]:
    """The spec of a :class:`ProbeMLP` dims[0] → … → dims[-1] with weights drawn from ``rng``:
    W ~ N(0, scale²/fan_in), b ~ N(0, 0.1²)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    layers = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        weight = rng.normal(0.0, scale / math.sqrt(a), size=(b, a))
        bias = rng.normal(0.0, 0.1, size=b)
        layers.append({"weight": tensor(weight), "bias": tensor(bias)})
    return {
        "spec": "mlp",
        "layers": layers,
        "activation": activation,
        "flatten": flatten,
        "squeeze": squeeze,
        "grad": grad,
    }


class ProbeMLP(nn.Module):
    """A float64 MLP with given weights: optional flattening of the input, ``activation`` between
    layers, and optionally the last axis squeezed (for critics that return one score per sample)."""

    def __init__(self, layers: Sequence[nn.Linear], activation: str, flatten: bool, squeeze: bool) -> None:
        super().__init__()
        self.linears = nn.ModuleList(layers)
        self.activation, self.flatten, self.squeeze = activation, flatten, squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1) if self.flatten else x
        for i, linear in enumerate(self.linears):
            h = linear(h)
            if i < len(self.linears) - 1:
                h = ACTIVATIONS[self.activation](h)
        return h.squeeze(-1) if self.squeeze else h


def _array(spec: dict[str, Any], dtypes: dict[str, Any]) -> np.ndarray:
    if spec["dtype"] not in dtypes:
        raise ValueError(f"unknown dtype {spec['dtype']!r}")
    arr = np.asarray(spec["data"], dtype=ARRAY_DTYPES[spec["dtype"]])
    return arr.reshape(spec["shape"])


def build(spec: dict[str, Any]) -> Any:
    """The object that an input spec describes (see the module's table); a fresh one per call."""
    kind = spec.get("spec")
    if kind == "tensor":
        t = torch.from_numpy(_array(spec, TENSOR_DTYPES).copy())
        return t.requires_grad_(True) if spec["grad"] else t
    if kind == "ndarray":
        return _array(spec, ARRAY_DTYPES).copy()
    if kind == "literal":
        return spec["value"]
    if kind == "mlp":
        layers = []
        for layer in spec["layers"]:
            weight, bias = build(layer["weight"]), build(layer["bias"])
            linear = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(weight)
                linear.bias.copy_(bias)
            layers.append(linear)
        module = ProbeMLP(layers, spec["activation"], spec["flatten"], spec["squeeze"])
        return module.requires_grad_(bool(spec["grad"]))
    raise ValueError(f"unknown input spec {kind!r}")


def _gradient_inputs(args: Sequence[Any], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors to differentiate with respect to: inputs built with ``grad=True`` and the
    parameters of networks built with ``grad=True``, in argument order."""
    wrt: list[torch.Tensor] = []
    for value in [*args, *kwargs.values()]:
        if isinstance(value, torch.Tensor) and value.requires_grad:
            wrt.append(value)
        elif isinstance(value, nn.Module):
            wrt.extend(p for p in value.parameters() if p.requires_grad)
    return wrt


def evaluate(target: Any, probe: dict[str, Any]) -> dict[str, Any]:
    """Run one probe against ``target`` (a function, or the value of a variable) and return the
    plain result; an exception raised by the call is recorded as ``{"kind": "raised", ...}``.

    ``probe`` holds ``call`` (call ``target`` or read it), ``args`` and ``kwargs`` (input specs)
    and ``grad`` (also return the gradients of the output's sum, see the module's docstring).
    """
    if not probe["call"]:
        return to_plain(target)
    if not callable(target):
        return {"kind": "error", "message": f"is a {type(target).__name__}, not a function"}
    args = [build(spec) for spec in probe["args"]]
    kwargs = {name: build(spec) for name, spec in probe["kwargs"].items()}
    try:
        out = target(*args, **kwargs)
        if not probe["grad"]:
            return to_plain(out)
        if type(out) is not torch.Tensor or not out.requires_grad:
            return {
                "kind": "error",
                "message": "the result is not a torch tensor connected to the inputs' autograd graph, "
                "so its gradient cannot be checked",
            }
        wrt = _gradient_inputs(args, kwargs)
        grads = torch.autograd.grad(out.sum(), wrt, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt, strict=True)]
        return to_plain((out, tuple(grads)))
    except Exception as exc:  # the grader's side: the submission's side catches BaseException itself
        return raised(exc)
