"""A cache of trained networks, shared by the notebooks of one book build.

Several lectures train the same network the same way (the judge classifier of lectures 5, 7,
9, 10 and 11; the DCGAN of lectures 5, 6 and 9; the VAE of lectures 5 and 9). A run is
deterministic on the CPU, so the second lecture may load what the first one trained instead of
training it again: same code, same data, same seed, same weights. The cache is off unless the
environment variable ``GENCOURSE_CACHE`` names a directory (``make book`` sets it to
``_build/model-cache``); on Colab and on a reader's laptop every notebook trains its own
networks.

A cached run is named by a fingerprint of everything it depends on: the arguments of the
training function (tensors by their contents), the source code of the ``gencourse`` package
and the torch version. Changing any of them trains anew. Loading restores, besides the
networks' weights and the training function's result, the state of the random-number
generators after training, so that the rest of the notebook draws the same numbers whether the
network was trained or loaded.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

CACHE_ENV = "GENCOURSE_CACHE"
T = TypeVar("T")


def cache_dir() -> Path | None:
    """The cache directory named by ``GENCOURSE_CACHE`` (created if missing), or None (no cache)."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_digest() -> str:
    """SHA-256 of the package's Python sources (every ``*.py`` under ``gencourse/``, sorted)."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _feed(h: Any, value: Any) -> None:
    """Feed ``value`` into the hash ``h``: tensors by dtype, shape and bytes; containers item by
    item; numbers, strings, None and booleans by their repr. Anything else is an error (its repr
    need not determine its contents)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"tensor{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, Mapping):
        h.update(b"{")
        for k in sorted(value, key=str):
            _feed(h, str(k))
            _feed(h, value[k])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _feed(h, v)
        h.update(b"]")
    elif value is None or isinstance(value, (bool, int, float, str)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise TypeError(f"cannot fingerprint a {type(value).__name__}; pass tensors, numbers or strings")


def fingerprint(name: str, key: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``name``, ``key``, the package's sources and the torch version."""
    h = hashlib.sha256()
    _feed(h, {"name": name, "key": key, "source": _package_digest(), "torch": torch.__version__})
    return h.hexdigest()


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])


def _load(path: Path, modules: Mapping[str, nn.Module]) -> Any:
    blob = torch.load(path, map_location="cpu", weights_only=False)  # our own file, see cached_training
    for k, module in modules.items():
        module.load_state_dict(blob["modules"][k])
        for sub, training in zip(module.modules(), blob["training"][k], strict=True):
            sub.training = training
    _set_rng_state(blob["rng"])
    return blob["result"]


def _save(path: Path, modules: Mapping[str, nn.Module], result: Any) -> None:
    blob = {
        "modules": {k: {n: t.cpu() for n, t in m.state_dict().items()} for k, m in modules.items()},
        "training": {k: [sub.training for sub in m.modules()] for k, m in modules.items()},
        "rng": _rng_state(),
        "result": result,
    }
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(blob, tmp)
    tmp.replace(path)  # atomic: a reader sees the whole file or none


def cached_training(
    name: str, key: Mapping[str, Any], modules: Mapping[str, nn.Module], train: Callable[[], T]
) -> T:
    """Return ``train()``, which trains ``modules`` in place, or load its outcome from the cache.

    ``key`` must hold every argument that the training depends on besides the modules' initial
    weights, which are part of the fingerprint too. Without a cache directory this is just
    ``train()``. With one, the first call for a fingerprint trains and saves; later calls (from
    any notebook) load the weights into ``modules``, restore the random-number generators' state
    and return the saved result. A lock makes a second notebook asking for the same run wait
    for the first rather than train it twice. Only load cache directories you wrote yourself:
    the files are pickles.
    """
    directory = cache_dir()
    if directory is None:
        return train()
    initial = {k: m.state_dict() for k, m in modules.items()}
    path = directory / f"{name}-{fingerprint(name, {'key': key, 'initial': initial})[:20]}.pt"
    import fcntl  # POSIX only; the cache is opt-in and the book is built on Linux

    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            print(f"{name}: loaded from the cache ({path.name}), trained by an identical earlier run")
            return _load(path, modules)
        result = train()
        _save(path, modules, result)
        return result
