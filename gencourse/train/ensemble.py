"""S networks of one architecture trained together: several seeds or settings in one run.

The course's one way to train copies at once is *stacked layers*: a layer holds the S members'
weights stacked along a leading axis and applies them in one kernel, member s to its own slice of
the input. :class:`EnsembleLinear` computes y[s] = x[s] W[s] + b[s] for x of shape (S, n, d) by one
batched matrix product (``torch.baddbmm``); :class:`EnsembleBatchNorm` normalises x[s] with member
s's own batch statistics and keeps member s's own running averages. Convolutional networks do the
same with a grouped convolution (S groups, channels member-major) and a batch norm over the S·C
channels, which is per member and channel (``gencourse.dip.SkipNet`` with ``members``).

The members do not interact: for a loss that is the sum of the members' losses,
L(θ) = Σ_s L_s(θ_s), the gradient in θ_s is ∇L_s(θ_s), and an element-wise optimiser (Adam)
moves each member exactly as it would move alone.

Why stacked layers and not ``torch.func`` (``stack_module_state`` + ``vmap`` over
``functional_call``), which stacks any network without rewriting it: at every lecture's size
(the 2-D MLP GANs of lectures 2–3, lecture 4's PacGAN ensembles, lecture 6's batched deep image
priors) ``vmap`` took more time per step than the stacked layers, on one CPU thread; the
measurements are in the message of commit 29a4661.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


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
