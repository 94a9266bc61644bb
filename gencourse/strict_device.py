"""A strict logical device: CUDA's (or Apple MPS's) device rules, enforced on a machine without one.

Students run the notebooks on Colab with a GPU; continuous integration has none. With
``GENCOURSE_STRICT_DEVICE=1`` (or ``=cuda``), :func:`gencourse.runtime.get_device` returns the
logical device ``cuda`` and switches this module on: tensors created on or moved to that device
report ``device(type='cuda', index=0)`` while their arithmetic runs on the CPU, bit for bit as a
plain CPU run, and every operation that CUDA refuses is refused here too. With
``GENCOURSE_STRICT_DEVICE=mps`` the logical device is ``mps`` and, as on Apple's MPS, float64
(and complex128) tensors on it are refused as well.

Mechanism. A wrapper tensor subclass (:class:`DeviceTensor`) holds a CPU tensor and reports the
logical device; its ``__torch_dispatch__`` checks the devices of every ATen operation's tensor
arguments, runs the operation on the CPU tensors and wraps the results. A
:class:`~torch.overrides.TorchFunctionMode` (:class:`StrictDeviceMode`) intercepts, before any
CUDA driver is touched, the calls that *create* or *move* tensors: factories with ``device=``
(``torch.zeros``, ``torch.randn``, ``torch.arange``, ``torch.linspace``, ``torch.tensor``,
``torch.as_tensor``, ``*_like``, ``nn.Linear(..., device=)``, ...), ``Tensor.to``, ``.cuda()`` and
``.cpu()`` (so module ``.to(device)`` moves parameters and buffers), ``.numpy()``; and it checks
the device of every ``generator=``. ``torch.Generator`` is replaced by a subclass that accepts
``device=<logical device>`` (a CPU generator underneath, so the draws equal a CPU run's).

What CUDA refuses and this mode refuses (``StrictDeviceError``, a ``RuntimeError``/``TypeError``
with CUDA's wording plus the user's line):

* an operation whose tensor arguments live on the logical device and on the CPU (binary ops,
  ``matmul``, ``cat``, in-place ops, ``where``, losses, ...), except the allow-list below;
* indexing a CPU tensor with an index tensor on the device;
* ``.numpy()`` (and ``np.asarray``) of a device tensor;
* a random draw whose ``generator=`` is on another device than the draw (a CPU generator for
  ``torch.randn(..., device=DEVICE)``, or a device generator for a CPU draw);
* in ``mps`` mode: a float64/complex128 tensor on the device (``.double()``, ``.to(float64)``,
  ``torch.zeros(..., dtype=torch.float64, device=DEVICE)``).

Allow-list (what CUDA permits, permitted here):

* 0-dim CPU tensors as operands (CUDA treats them as scalars), e.g. ``x_dev * torch.tensor(2.0)``;
  here in every operation, where CUDA allows them in element-wise operations (TensorIterator)
  and ``index_put_`` values: slightly more permissive than CUDA for other operations;
* CPU index tensors (integer or boolean) when indexing or index-assigning a device tensor
  (``x_dev[idx_cpu]``, ``x_dev[mask_cpu] = 0``);
* explicit copies across devices: ``.to(DEVICE)``, ``.to("cpu")``, ``.cpu()``, ``.cuda()`` (cuda
  mode), ``.copy_()``, slice assignment ``x_dev[a:b] = x_cpu``, ``.item()``, ``.tolist()``,
  ``float(x_dev)``.

What it does not emulate: asynchrony and streams, memory limits, CUDA's random streams (a
device generator draws the CPU's numbers), the non-determinism of CUDA kernels, TF32, autocast,
and CUDA-only APIs (``torch.cuda.*`` stay unavailable: ``torch.cuda.is_available()`` is False).
MPS mode refuses float64/complex128 only, not MPS's other gaps (operators without an MPS kernel).
0-dim CPU tensors are accepted by every operation (CUDA: element-wise ones and ``index_put_``).
``torch.load(map_location="cpu")`` of a pickled device tensor returns a device tensor.

How it stays on the CPU. C++ sees the wrapper's device as ``meta`` (whose no-op device guard
needs no driver; a wrapper that told C++ ``cuda`` would make the autograd engine initialise
CUDA); Python sees the logical device (the ``device``/``is_cuda`` properties). Torch's own
``Tensor.__getitem__``/``__setitem__`` take a device guard, so indexing of device tensors is
re-expressed in ATen calls (select, slice, unsqueeze, index, index_put_). Factories that C++
code calls with a device tensor's options (``meta``: ``F.one_hot``'s ``arange``, the dummy
weights of vmap's batch-norm rule, backward formulas' ``zeros``) are re-registered for the
``Meta`` key while the mode is on, to make device tensors with the CPU's values (so a genuine
``.to("meta")``, as in ``gencourse.dip.fit_dip_batch``'s template network, gives device tensors).
"""

from __future__ import annotations

import contextlib
import math
import os
import traceback
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

ENV = "GENCOURSE_STRICT_DEVICE"
KINDS = ("cuda", "mps")
_MPS_REFUSED = (torch.float64, torch.complex128)
_HERE = os.path.abspath(__file__)
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_PACKAGE_DIR = os.path.dirname(_HERE)

aten = torch.ops.aten
_SHADOW = torch.device("meta")
_CPU = torch.device("cpu")
_NO_TORCH_FUNCTION = torch._C.DisableTorchFunction
_COPY_OPS = {aten.copy_.default, aten._to_copy.default, aten.copy.default}
_INDEX_OPS = {
    aten.index.Tensor,
    aten.index_put_.default,
    aten.index_put.default,
    aten._index_put_impl_.default,
}


class StrictDeviceError(RuntimeError):
    """An operation that a real CUDA/MPS device would refuse."""


class StrictDeviceTypeError(TypeError):
    """A conversion that a real CUDA/MPS device would refuse with a TypeError (``.numpy()``, float64 on MPS)."""


def mode_from_env() -> str | None:
    """The strict device kind from ``GENCOURSE_STRICT_DEVICE``: ``"cuda"`` for ``1``/``cuda``,
    ``"mps"`` for ``mps``, None when unset, empty or ``0``; ValueError for anything else."""
    raw = os.environ.get(ENV, "").strip().lower()
    if raw in ("", "0"):
        return None
    if raw in ("1", "cuda"):
        return "cuda"
    if raw == "mps":
        return "mps"
    raise ValueError(f"{ENV}={raw!r}: expected 1, cuda or mps (or 0 / unset to switch it off)")


# --------------------------------------------------------------------------------------------
# error messages that name the user's line


def _where() -> str:
    """The innermost frame outside torch and this module (the user's line), and the innermost
    frame outside the gencourse package too when the first is in it (the lecture's line)."""
    frames = [
        f
        for f in reversed(traceback.extract_stack())
        if not os.path.abspath(f.filename).startswith(_TORCH_DIR) and os.path.abspath(f.filename) != _HERE
    ]
    if not frames:
        return ""
    out = [frames[0]]
    if os.path.abspath(frames[0].filename).startswith(_PACKAGE_DIR):
        outer = next((f for f in frames if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)), None)
        if outer is not None:
            out.append(outer)
    return "; called from ".join(f'{f.filename}:{f.lineno}: "{(f.line or "").strip()}"' for f in out)


def _fail(message: str, kind: type[Exception] = StrictDeviceError) -> None:
    where = _where()
    raise kind(f"[strict device] {message}" + (f"\n  at {where}" if where else ""))


# --------------------------------------------------------------------------------------------
# the tensor subclass


class DeviceTensor(torch.Tensor):
    """A CPU tensor (``_elem``) that reports, and is checked as, a tensor on a logical device."""

    _elem: torch.Tensor
    _logical: torch.device

    @staticmethod
    def __new__(cls, elem: torch.Tensor, logical: torch.device, requires_grad: bool = False) -> DeviceTensor:
        if logical.type == "mps" and elem.dtype in _MPS_REFUSED:
            _fail(
                f"Cannot convert a MPS Tensor to {str(elem.dtype).removeprefix('torch.')} dtype as the MPS framework doesn't support "
                "float64. Please use float32 instead.",
                StrictDeviceTypeError,
            )
        out = torch.Tensor._make_wrapper_subclass(
            cls,
            elem.size(),
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=_SHADOW,
            requires_grad=requires_grad,
        )
        out._elem = elem
        out._logical = logical
        return out

    # Python sees the logical device; C++ (the autograd engine's streams and device threads)
    # sees `meta`, whose no-op device guard needs no driver.
    @property
    def device(self) -> torch.device:  # noqa: D102
        return self._logical

    @property
    def is_cuda(self) -> bool:  # noqa: D102
        return self._logical.type == "cuda"

    @property
    def is_mps(self) -> bool:  # noqa: D102
        return self._logical.type == "mps"

    @property
    def is_meta(self) -> bool:  # noqa: D102
        return False

    def __deepcopy__(self, memo: dict) -> DeviceTensor:
        out = DeviceTensor(self._elem.clone(), self._logical, requires_grad=self.requires_grad)
        if getattr(self, "_is_param", False):
            out._is_param = True
        if self.grad is not None:
            out.grad = self.grad.clone()
        memo[id(self)] = out
        return out

    def __repr__(self, *, tensor_contents: Any = None) -> str:  # noqa: D105
        return f"{self._elem!r} (on logical {self._logical})"

    def __tensor_flatten__(self) -> tuple[list[str], torch.device]:
        return ["_elem"], self._logical

    @staticmethod
    def __tensor_unflatten__(
        inner: dict, logical: torch.device, outer_size: Any, outer_stride: Any
    ) -> DeviceTensor:
        return DeviceTensor(inner["_elem"], logical)

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        # Below the function mode: no Python-level torch function handling for the plain tensors
        with _NO_TORCH_FUNCTION():
            return cls._dispatch(func, args, kwargs)

    @classmethod
    def _dispatch(cls, func, args, kwargs):  # noqa: ANN001, ANN206
        # The hot path of every operation on the device: a hand-written unwrap (pytree is slower).
        inputs: list[DeviceTensor] = []
        plain: list[torch.Tensor] = []

        def unwrap(a: Any) -> Any:
            if isinstance(a, DeviceTensor):
                inputs.append(a)
                return a._elem
            if isinstance(a, torch.Tensor):
                if a.dim() > 0:
                    plain.append(a)
                return a
            if isinstance(a, (list, tuple)):
                return type(a)(unwrap(b) for b in a)
            return a

        uargs = tuple(unwrap(a) for a in args)
        ukwargs = {k: unwrap(v) for k, v in kwargs.items()} if kwargs else {}
        logical = inputs[0]._logical
        if plain and func not in _COPY_OPS:
            _check_mixed(func, args, logical)
        out_device = logical
        device = ukwargs.get("device")
        if device is not None:
            target = torch.device(device)
            if target.type in (logical.type, "meta"):
                ukwargs["device"] = _CPU
            elif target.type == "cpu":
                out_device = None
        if func is aten.copy_.default and not isinstance(args[0], DeviceTensor):
            out_device = None  # cpu_tensor.copy_(device_tensor): a copy to the host
        out = func(*uargs, **ukwargs)
        if isinstance(out, torch.Tensor):
            return _rewrap(out, inputs, out_device)
        if isinstance(out, (list, tuple)):
            return type(out)(
                _rewrap(t, inputs, out_device) if isinstance(t, torch.Tensor) else t for t in out
            )
        return out


def _rewrap(t: torch.Tensor, inputs: list[DeviceTensor], device: torch.device | None) -> torch.Tensor:
    """The output of an operation: the input itself for in-place and ``out=`` operations."""
    for a in inputs:
        if t is a._elem:
            return a
    return t if device is None else DeviceTensor(t, device)


def _check_mixed(func: Any, args: tuple, logical: torch.device) -> None:
    """Refuse a mix of device tensors and non-scalar CPU tensors, but for CPU index tensors."""
    if func in _INDEX_OPS and isinstance(args[0], DeviceTensor):
        rest = [args[0], *args[2:]]  # the indices (args[1]) may stay on the CPU
    else:
        rest = list(args)
    for t in tree_flatten(rest)[0]:
        if isinstance(t, torch.Tensor) and not isinstance(t, DeviceTensor) and t.dim() > 0:
            if func in _INDEX_OPS and t is args[0]:
                _fail(
                    f"indices should be either on cpu or on the same device as the indexed tensor (cpu); "
                    f"an index is on {logical} ({func})"
                )
            _fail(
                f"Expected all tensors to be on the same device, but found at least two devices, "
                f"{logical} and {t.device}! ({func}: a {tuple(t.shape)} CPU tensor)"
            )


def _logical_of(t: torch.Tensor) -> torch.device:
    return t._logical if isinstance(t, DeviceTensor) else t.device


class _ToDevice(torch.autograd.Function):
    """Copy a CPU tensor to the logical device; the gradient comes back to the CPU."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, logical: torch.device) -> DeviceTensor:  # noqa: ANN001
        return DeviceTensor(x.detach().clone(), logical)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return (grad._elem.clone() if isinstance(grad, DeviceTensor) else grad), None


class _ToHost(torch.autograd.Function):
    """Copy a device tensor to the CPU; the gradient goes back to the device."""

    @staticmethod
    def forward(ctx, x: DeviceTensor) -> torch.Tensor:  # noqa: ANN001
        ctx.logical = x._logical
        return x._elem.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return grad if isinstance(grad, DeviceTensor) else DeviceTensor(grad.clone(), ctx.logical)


def _move(
    t: torch.Tensor, target: torch.device | None, dtype: torch.dtype | None, copy: bool
) -> torch.Tensor:
    """``t.to(target, dtype)`` between the CPU and the logical device (target None: same device)."""
    src = _logical_of(t)
    if dtype is not None and dtype != t.dtype:
        if isinstance(t, DeviceTensor) and target is not None and target.type == "cpu":
            pass  # convert after the copy to the host, as `.cpu().double()` does on MPS
        else:
            t = t.to(dtype)  # on the device: goes through __torch_dispatch__ (MPS refuses float64)
    if target is None or target.type == src.type:
        return t.clone() if copy else t
    if target.type == "cpu":
        out = _ToHost.apply(t) if t.requires_grad and torch.is_grad_enabled() else t._elem.clone()
        return out if dtype is None else out.to(dtype)
    logical = torch.device(target.type, 0)
    if t.requires_grad and torch.is_grad_enabled():
        return _ToDevice.apply(t, logical)
    return DeviceTensor(t.detach().clone(), logical)


# --------------------------------------------------------------------------------------------
# generators


class _GeneratorMeta(type(torch._C.Generator)):
    """Makes every ``torch._C.Generator`` an instance of the replacement class."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, torch._C.Generator)


class DeviceGenerator(torch._C.Generator, metaclass=_GeneratorMeta):
    """``torch.Generator`` that accepts the logical device: a CPU generator that reports it."""

    def __new__(cls, device: Any = "cpu") -> DeviceGenerator:
        dev = torch.device(device)
        if _ACTIVE is not None and dev.type == _ACTIVE.type:
            g = super().__new__(cls)
            g._logical = torch.device(dev.type, 0)
            return g
        g = super().__new__(cls, device=dev)
        g._logical = dev
        return g

    def __init__(self, device: Any = "cpu") -> None:
        pass

    @property
    def device(self) -> torch.device:  # noqa: D102
        return self._logical


def _generator_device(g: torch.Generator) -> torch.device:
    return getattr(g, "_logical", None) or g.device


# --------------------------------------------------------------------------------------------
# the function mode


_NUMPY = {torch.Tensor.numpy, torch.Tensor.__array__}
_HOST_VIEWS = {torch.Tensor.tolist, torch.Tensor.__format__}
_TO = {torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda}


def _basic_index(x: torch.Tensor, index: Any) -> tuple[torch.Tensor, list]:
    """``x[index]`` as torch's Python indexing performs it: ints, slices, None and Ellipsis as
    views (select, slice, unsqueeze) and the tensor indices collected for one ``aten.index``.

    (Torch's own ``Tensor.__getitem__`` takes a CUDA device guard for a tensor that reports
    CUDA, which needs a driver; these ATen calls do not.)"""
    items = list(index) if isinstance(index, tuple) else [index]
    for i, item in enumerate(items):
        if isinstance(item, list) or (hasattr(item, "__array__") and not isinstance(item, torch.Tensor)):
            items[i] = torch.as_tensor(item)
    consumed = sum(
        (item.dim() if item.dtype == torch.bool else 1)
        if isinstance(item, torch.Tensor)
        else 0
        if item is None or item is Ellipsis or isinstance(item, bool)
        else 1
        for item in items
    )
    ndim, dim, indices, seen_tensor = x.dim(), 0, [], False
    for item in items:
        if item is Ellipsis:
            n = ndim - consumed
            indices += [None] * n
            dim += n
        elif item is None or isinstance(item, bool):
            x = aten.unsqueeze.default(x, dim)
            if item is False:
                x = aten.slice.Tensor(x, dim, 0, 0)
            indices.append(None)
            dim += 1
        elif isinstance(item, slice):
            start, stop, step = item.start, item.stop, item.step
            x = aten.slice.Tensor(x, dim, _int(start), _int(stop), 1 if step is None else _int(step))
            indices.append(None)
            dim += 1
        elif isinstance(item, torch.Tensor):
            indices.append(item)
            seen_tensor = True
            dim += item.dim() if item.dtype == torch.bool else 1
        else:
            x = aten.select.int(x, dim, int(item))
    if not seen_tensor:
        indices = []
    while indices and indices[-1] is None:
        indices.pop()
    return x, indices


def _int(v: Any) -> Any:
    return int(v) if v is not None else None


def _getitem(x: DeviceTensor, index: Any) -> torch.Tensor:
    """``x[index]`` for a device tensor."""
    y, indices = _basic_index(x, index)
    if not indices:
        return y if y is not x else aten.alias.default(x)
    return aten.index.Tensor(y, indices)


def _setitem(x: DeviceTensor, index: Any, value: Any) -> None:
    """``x[index] = value`` for a device tensor: a copy for basic indexing, ``index_put_`` for
    tensor indices (as torch does; CUDA allows a CPU value only as a copy or as a 0-dim tensor)."""
    y, indices = _basic_index(x, index)
    if not indices:
        if isinstance(value, torch.Tensor):
            y.copy_(value)
        else:
            y.fill_(value)
        return
    if not isinstance(value, torch.Tensor):
        value = torch.tensor(value, dtype=y.dtype)
    aten.index_put_.default(y, indices, value)


class StrictDeviceMode(TorchFunctionMode):
    """Intercepts factories with ``device=``, moves and ``.numpy()`` before they reach CUDA."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.logical = torch.device(kind, 0)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        kwargs = kwargs or {}
        if func in _TO:
            return self._to(func, args, kwargs)
        if func is torch._C._nn._parse_to:  # Module.to's argument parser: keep the logical device
            return func(*args, **kwargs)
        if func in _HOST_VIEWS and isinstance(args[0], DeviceTensor):  # CUDA copies to the host
            return func(args[0]._elem, *args[1:], **kwargs)
        if func is torch.Tensor.numpy and isinstance(args[0], DeviceTensor) and kwargs.get("force"):
            return args[0]._elem.detach().clone().numpy()
        if func in _NUMPY and isinstance(args[0], DeviceTensor):
            _fail(
                f"can't convert {args[0].device} device type tensor to numpy. Use Tensor.cpu() to copy "
                "the tensor to host memory first.",
                StrictDeviceTypeError,
            )
        if func is torch.Tensor.__getitem__ and isinstance(args[0], DeviceTensor):
            return _getitem(args[0], args[1])
        if func is torch.Tensor.__setitem__ and isinstance(args[0], DeviceTensor):
            return _setitem(args[0], args[1], args[2])
        gen = kwargs.get("generator")
        device = kwargs.get("device")
        if func is torch.as_tensor and len(args) >= 3 and device is None:
            args, device = args[:2], args[2]
            kwargs = {**kwargs, "device": device}
        target = torch.device(device) if device is not None else None
        if gen is not None:
            self._check_generator(gen, target, args)
        if target is not None and target.type == self.logical.type:
            if func is torch.as_tensor and isinstance(args[0], DeviceTensor):
                return args[0].to(kwargs.get("dtype") or args[0].dtype)
            kwargs = {**kwargs, "device": "cpu"}
            out = func(*args, **kwargs)
            return tree_map(lambda t: _wrap_new(t, self.logical), out)
        if func is torch.Tensor.new_tensor and isinstance(args[0], DeviceTensor):
            return DeviceTensor(args[0]._elem.new_tensor(*args[1:], **kwargs), args[0]._logical)
        return func(*args, **kwargs)

    def _check_generator(self, gen: torch.Generator, target: torch.device | None, args: tuple) -> None:
        if target is None:
            first = next((t for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor)), None)
            target = _logical_of(first) if first is not None else torch.device("cpu")
        found = _generator_device(gen)
        if found.type != target.type:
            _fail(f"Expected a '{target.type}' device type for generator but found '{found.type}'")

    def _to(self, func: Any, args: tuple, kwargs: dict) -> torch.Tensor:
        t, rest = args[0], args[1:]
        kwargs = dict(kwargs)
        copy = bool(kwargs.pop("copy", False))
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if func is torch.Tensor.cpu:
            return _move(t, torch.device("cpu"), None, False)
        if func is torch.Tensor.cuda:
            if self.logical.type != "cuda":
                return func(*args, **kwargs)  # no CUDA on this machine: torch raises
            return _move(t, self.logical, None, False)
        other = kwargs.pop("other", None)
        if other is None and rest and isinstance(rest[0], torch.Tensor):
            other = rest[0]
        if other is not None:  # .to(other): other's device and dtype
            device, dtype = _logical_of(other), other.dtype
        else:
            device, dtype, _, _ = torch._C._nn._parse_to(*rest, **kwargs)
        if device is not None and device.type not in ("cpu", self.logical.type):
            return func(*args, **kwargs)  # another device: torch raises as it would here
        return _move(t, device, dtype, copy)


def _wrap_new(t: Any, logical: torch.device) -> Any:
    if not isinstance(t, torch.Tensor) or isinstance(t, DeviceTensor):
        return t
    return DeviceTensor(t.detach(), logical, requires_grad=t.requires_grad)


# --------------------------------------------------------------------------------------------
# switching it on

_ACTIVE: torch.device | None = None
_MODE: StrictDeviceMode | None = None
_ORIGINAL_GENERATOR = torch.Generator


_LIBRARY: torch.library.Library | None = None
# Factories that C++ code calls with a device tensor's options (device `meta`, the shadow), e.g.
# the dummy weights of vmap's batch-norm rule: they make device tensors while the mode is on.
# Each is replaced whole (its meta kernel computes shapes only, e.g. arange's, which F.one_hot
# calls for a non-CPU tensor); `empty` is filled with NaN (integers: their minimum) so that a
# kernel that writes into it through a meta path fails loudly instead of computing silently wrong.
_SHADOW_FACTORIES = (
    "empty.memory_format",
    "empty_strided",
    "zeros",
    "ones",
    "full",
    "scalar_tensor",
    "arange",
    "arange.start",
    "arange.start_step",
    "linspace",
    "logspace",
    "eye",
    "eye.m",
    "rand",
    "randn",
    "randint",
    "randint.low",
    "randperm",
)
_EMPTY = {"empty.memory_format", "empty_strided"}


def _register_shadow_factories() -> None:
    global _LIBRARY
    _LIBRARY = torch.library.Library("aten", "IMPL")  # noqa: TOR901
    for name in _SHADOW_FACTORIES:
        base, _, overload = name.partition(".")
        op = getattr(getattr(aten, base), overload or "default")

        def impl(*args: Any, _op: Any = op, _empty: bool = name in _EMPTY, **kwargs: Any) -> DeviceTensor:
            out = _op(*args, **{**kwargs, "device": _CPU})
            if _empty and out.numel():
                bad = math.nan if out.is_floating_point() or out.is_complex() else None
                if bad is None and out.dtype != torch.bool:
                    bad = torch.iinfo(out.dtype).min
                out.fill_(True if bad is None else bad)
            return DeviceTensor(out, _ACTIVE)

        _LIBRARY.impl(name, impl, "Meta")


def enable(kind: str = "cuda") -> torch.device:
    """Switch the strict device on for the rest of the process (idempotent); return the device
    that code should use (``torch.device(kind)``, as ``get_device()`` returns on a real GPU)."""
    global _ACTIVE, _MODE
    if kind not in KINDS:
        raise ValueError(f"strict device kind must be one of {KINDS}, got {kind!r}")
    if _ACTIVE is not None:
        if _ACTIVE.type != kind:
            raise RuntimeError(f"strict device already enabled as {_ACTIVE.type}, cannot switch to {kind}")
        return torch.device(kind)
    _ACTIVE = torch.device(kind, 0)
    _register_shadow_factories()
    _MODE = StrictDeviceMode(kind)
    _MODE.__enter__()
    torch.Generator = DeviceGenerator
    return torch.device(kind)


def disable() -> None:
    """Switch the strict device off (tests)."""
    global _ACTIVE, _MODE
    if _MODE is not None:
        _MODE.__exit__(None, None, None)
    torch.Generator = _ORIGINAL_GENERATOR
    global _LIBRARY
    if _LIBRARY is not None:
        _LIBRARY._destroy()
        _LIBRARY = None
    _ACTIVE, _MODE = None, None


@contextlib.contextmanager
def strict_device(kind: str = "cuda") -> Iterator[torch.device]:
    """``with strict_device("cuda") as device: ...``: the strict device for a block (tests)."""
    device = enable(kind)
    try:
        yield device
    finally:
        disable()


def is_enabled() -> bool:
    """Whether the strict device is on."""
    return _ACTIVE is not None
