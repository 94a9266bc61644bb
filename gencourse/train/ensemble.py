"""S networks of one architecture trained together: several seeds or settings in one run.

**Stacked layers.** :class:`EnsembleLinear` and :class:`EnsembleBatchNorm` hold ``members``
independent copies of a layer as stacked weights and apply them at once, member s to its own slice
x[s] of an input (members, n, features): one batched matrix product ``torch.baddbmm`` per linear
layer, batch statistics per member. For small networks on a CPU, whose cost is mostly the
per-operation overhead, S members cost much less than S separate runs.

**Ensembles of any network.** :class:`Ensemble` stacks whole networks instead.

The S members' parameters and buffers are stacked along a new leading axis, θ = (θ₁, …, θ_S),
and the ensemble maps inputs x = (x₁, …, x_S) to (f_θ₁(x₁), …, f_θ_S(x_S)) by vectorising one
member's forward pass over that axis (``torch.func.vmap`` of ``torch.func.functional_call``):
member s sees only its own slice, so batch normalisation uses member s's own batch statistics and
updates member s's own running averages. The members do not interact: for a loss that is the sum
of the members' losses, L(θ) = Σ_s L_s(θ_s), the gradient in θ_s is ∇L_s(θ_s), and an element-wise
optimiser (Adam) moves each member exactly as it would move alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


def _row_major(t: torch.Tensor) -> torch.Tensor:
    """A detached copy of ``t`` with the standard row-major strides of its shape. (vmap's
    convolution returned a wrong gradient for a stacked channels-last 1×1 weight (1, C, 1, 1);
    ``.contiguous()`` is not enough, since it keeps the odd strides of the size-1 dimensions.)"""
    return t.detach().flatten().clone().view(t.shape)


def _assign(module: nn.Module, name: str, value: torch.Tensor, parameter: bool) -> None:
    """Replace the parameter or buffer ``name`` (dotted path) of ``module`` by ``value``."""
    *path, leaf = name.split(".")
    owner = module.get_submodule(".".join(path))
    if parameter:
        setattr(owner, leaf, nn.Parameter(value))
    else:
        owner._buffers[leaf] = value


class EnsembleLinear(nn.Module):
    """``members`` independent affine maps, y[s] = x[s] W[s] + b[s], computed by one batched
    matrix product. Weights are drawn from N(0, init_std²) (the paper's initialisation) or,
    with ``init_std=None``, from PyTorch's default U(±1/√fan_in); biases start at zero."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        members: int = 1,
        bias: bool = True,
        init_std: float | None = 0.02,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.members = in_features, out_features, members
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_features)) if bias else None
        with torch.no_grad():
            if init_std is None:
                bound = 1 / math.sqrt(in_features)
                self.weight.uniform_(-bound, bound)
            else:
                self.weight.normal_(0.0, init_std)

    @classmethod
    def stack(cls, layers: Sequence[nn.Linear]) -> EnsembleLinear:
        """The ensemble of the given linear layers (same shapes): W[s] = layers[s].weightᵀ,
        b[s] = layers[s].bias, so that member s computes layers[s](x[s])."""
        if not layers or any(lay.weight.shape != layers[0].weight.shape for lay in layers):
            raise ValueError("need one or more linear layers of the same shape")
        has_bias = layers[0].bias is not None
        with torch.random.fork_rng(devices=[]):  # the initial draws are overwritten: keep the global stream
            out = cls(
                layers[0].in_features, layers[0].out_features, len(layers), bias=has_bias, init_std=None
            )
        with torch.no_grad():
            out.weight.copy_(torch.stack([lay.weight.detach().t() for lay in layers]))
            if has_bias:
                out.bias.copy_(torch.stack([lay.bias.detach()[None] for lay in layers]))
        return out.to(layers[0].weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (members, n, in) → (members, n, out)."""
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleBatchNorm(nn.Module):
    """Batch normalisation for ``members`` independent networks: x[s] is normalised with the
    mean and variance of its own samples, ŷ = γ[s] (x − μ) / √(σ² + eps) + β[s].

    With ``groups`` = g > 1 the n samples of each member form g consecutive groups of n/g,
    each normalised with its own statistics (as when a generator is applied g times, once per
    slot of a pack). Running averages (momentum ``momentum``) are used in eval mode.
    """

    def __init__(self, features: int, members: int = 1, momentum: float = 0.05, eps: float = 1e-5) -> None:
        super().__init__()
        self.members, self.momentum, self.eps = members, momentum, eps
        self.weight = nn.Parameter(torch.ones(members, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, 1, features))
        self.register_buffer("running_mean", torch.zeros(members, 1, features))
        self.register_buffer("running_var", torch.ones(members, 1, features))

    def forward(self, x: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """x: (members, n, features), n divisible by ``groups``."""
        if not self.training:
            return (x - self.running_mean) * torch.rsqrt(
                self.running_var + self.eps
            ) * self.weight + self.bias
        s, n, f = x.shape
        xg = x.reshape(s, groups, n // groups, f)
        mean = xg.mean(2, keepdim=True)
        var = xg.var(2, keepdim=True, unbiased=False)
        y = ((xg - mean) * torch.rsqrt(var + self.eps)).reshape(s, n, f) * self.weight + self.bias
        with torch.no_grad():
            unbiased = var * (n // groups) / max(n // groups - 1, 1)
            self.running_mean.lerp_(mean.mean(1), self.momentum)
            self.running_var.lerp_(unbiased.mean(1), self.momentum)
        return y


class Ensemble(nn.Module):
    """S = ``len(members)`` networks of one architecture (same class, same parameter and buffer
    shapes), each with its own weights, stacked: ``ensemble.stacked`` is a copy of the first
    member whose every parameter and buffer has a leading axis of length S (row s = member s).

    ``ensemble(x, *more)`` with inputs of shape (S, ...) returns member s's output on x[s] in
    row s; keyword arguments are passed to every member unchanged. Training and evaluation mode
    apply to all members. :meth:`member` returns a copy of one member; :meth:`unstack` writes
    the trained weights back into S networks.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        shapes = [[(k, tuple(v.shape)) for k, v in m.state_dict().items()] for m in members]
        if any(
            type(m) is not type(members[0]) or s != shapes[0] for m, s in zip(members, shapes, strict=True)
        ):
            raise ValueError("the members must share one architecture (same class, same shapes)")
        params, buffers = stack_module_state(members)
        self.members = len(members)
        self.stacked = copy.deepcopy(members[0])
        for name, value in params.items():
            _assign(self.stacked, name, _row_major(value), parameter=True)
        for name, value in buffers.items():
            _assign(self.stacked, name, _row_major(value), parameter=False)

    def forward(self, *inputs: torch.Tensor, **kwargs: Any) -> Any:
        """Member s applied to row s of every input: (S, ...) → (S, ...)."""
        for x in inputs:
            if x.shape[0] != self.members:
                raise ValueError(f"expected inputs of shape ({self.members}, ...), got {tuple(x.shape)}")
        params = dict(self.stacked.named_parameters())
        buffers = dict(self.stacked.named_buffers())

        def one(p: dict, b: dict, *xs: torch.Tensor) -> Any:
            return functional_call(self.stacked, (p, b), xs, kwargs)

        return vmap(one)(params, buffers, *inputs)

    def member(self, s: int) -> nn.Module:
        """A copy of member s (a network of the members' class, with member s's weights)."""
        if not 0 <= s < self.members:
            raise IndexError(f"member {s} of an ensemble of {self.members}")
        one = copy.deepcopy(self.stacked)
        for name, value in self.stacked.named_parameters():
            _assign(one, name, value.detach()[s].clone(), parameter=True)
        for name, value in self.stacked.named_buffers():
            _assign(one, name, value[s].clone(), parameter=False)
        return one

    @torch.no_grad()
    def unstack(self, modules: Sequence[nn.Module]) -> None:
        """Copy member s's parameters and buffers into ``modules[s]``, for every s."""
        if len(modules) != self.members:
            raise ValueError(f"need {self.members} modules, got {len(modules)}")
        state = self.stacked.state_dict()
        for s, module in enumerate(modules):
            module.load_state_dict({k: v[s] for k, v in state.items()})
