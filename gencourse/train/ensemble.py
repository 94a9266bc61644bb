"""S networks of one architecture trained together: several seeds or settings in one run.

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
