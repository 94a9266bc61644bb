"""Normalizing flows with exact log-likelihood: affine coupling layers (RealNVP, Dinh et al. 2017).

**Change of variables.** Let f: ℝᴰ → ℝᴰ be a differentiable bijection with differentiable
inverse, and z = f(x) with z ~ p_Z. Then x has the density

    p_X(x) = p_Z(f(x)) · |det J_f(x)|,      J_f(x) = ∂f/∂x  (a D × D matrix),

so log p_X(x) = log p_Z(f(x)) + log |det J_f(x)|. A flow composes K such maps,
f = f_K ∘ … ∘ f_1, whose log-determinants add (chain rule, det(AB) = det A · det B):

    log p_X(x) = log p_Z(z) + Σₖ log |det J_{f_k}(h_{k−1})|,   h_0 = x, h_k = f_k(h_{k−1}), z = h_K.

Here p_Z = N(0, I), log p_Z(z) = −½‖z‖² − (D/2) log 2π. Sampling runs the other way: z ~ p_Z,
x = f⁻¹(z).

**Affine coupling.** A binary mask m ∈ {0, 1}ᴰ splits x into the part that is kept (m = 1) and
the part that is transformed (m = 0):

    y = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s(m ⊙ x)) + t(m ⊙ x)),

with s and t any functions (here one MLP). The kept coordinates decide s and t, and they pass
unchanged, so

* the inverse is explicit: m ⊙ x = m ⊙ y, and x = m ⊙ y + (1 − m) ⊙ (y − t(m ⊙ y)) ⊙ exp(−s(m ⊙ y));
* the Jacobian, ordered kept coordinates first, is block triangular,
  [[I, 0], [∂y₂/∂x₁, diag(exp(s))]], so log |det J| = Σ_{i: mᵢ = 0} sᵢ(m ⊙ x): no D × D
  determinant is ever computed.

Here s = scale ⊙ tanh(raw s), a learnable per-coordinate bound that keeps early training
stable, and the MLP's last layer starts at zero, so that every coupling starts as the identity.

**Dequantisation** (Uria et al. 2013; Theis et al. 2016). A flow has a density; images have
integer levels x ∈ {0, …, L − 1}ᴰ. Train the density p on x + u, u ~ U[0, 1)ᴰ. It defines the
discrete model P(x) = ∫_{[0,1)ᴰ} p(x + u) du, and by Jensen's inequality (log is concave)

    E_u[log p(x + u)] ≤ log E_u[p(x + u)] = log ∫_{[0,1)ᴰ} p(x + u) du = log P(x),

so −E_u[log p(x + u)] is an upper bound on the discrete model's −log P(x), in the same nats as
an exact discrete likelihood. (Σₓ P(x) ≤ 1: the mass of p outside [0, L)ᴰ is lost, which can
only make the bound worse.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gencourse.nets import mlp


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_points(x: torch.Tensor, dim: int, what: str = "x") -> None:
    """x must be a floating (n, dim) tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{what} must have shape (n, {dim}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be a floating-point tensor, got {x.dtype}")


class AffineCoupling(nn.Module):
    """One affine coupling layer on ℝᴰ (D = ``dim``) with a fixed binary ``mask`` of shape (D,):

        y = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s) + t),  (s, t) = (scale ⊙ tanh(a), b),  (a, b) = MLP(m ⊙ x),

    s and t set to 0 where m = 1. ``forward(x)`` returns (y, log |det ∂y/∂x|) with
    log |det| = Σᵢ sᵢ (only the transformed coordinates contribute); ``inverse(y)`` returns
    x = m ⊙ y + (1 − m) ⊙ (y − t) ⊙ exp(−s), with s, t computed from m ⊙ y = m ⊙ x.

    The MLP is D → ``hidden`` → ``hidden`` → 2D with ReLU; its last layer starts at zero (the
    layer starts as the identity). A mask of zeros only makes s and t constants: the layer is
    then a learnable elementwise affine map x ↦ x ⊙ exp(s) + t.
    """

    def __init__(self, dim: int, hidden: int, mask: torch.Tensor) -> None:
        super().__init__()
        self.dim = _positive_int("dim", dim)
        _positive_int("hidden", hidden)
        mask = torch.as_tensor(mask)
        if mask.shape != (dim,):
            raise ValueError(f"mask must have shape ({dim},), got {tuple(mask.shape)}")
        if not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("mask must hold only 0 (transformed) and 1 (kept) entries")
        if torch.all(mask == 1):
            raise ValueError("a mask of ones transforms nothing: set some entries to 0")
        self.register_buffer("mask", mask.detach().to(torch.float32).clone())
        self.net = mlp([dim, hidden, hidden, 2 * dim])
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.scale = nn.Parameter(torch.ones(dim))

    def shift_and_log_scale(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, t) from the kept coordinates m ⊙ x, both zero where m = 1."""
        free = 1 - self.mask
        a, b = self.net(kept).chunk(2, dim=1)
        return self.scale * torch.tanh(a) * free, b * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, log |det ∂y/∂x|) for x of shape (n, D); the log-determinant has shape (n,)."""
        _check_points(x, self.dim)
        s, t = self.shift_and_log_scale(x * self.mask)
        return x * torch.exp(s) + t, s.sum(1)  # s = t = 0 on the kept coordinates: they pass

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """x = (y − t) ⊙ exp(−s), with (s, t) from m ⊙ y (= m ⊙ x); kept coordinates unchanged."""
        _check_points(y, self.dim, "y")
        s, t = self.shift_and_log_scale(y * self.mask)
        return (y - t) * torch.exp(-s)


def alternating_masks(dim: int, n_layers: int) -> list[torch.Tensor]:
    """Masks mᵏᵢ = (i + k) mod 2 for layers k = 0, …, n_layers − 1: each layer transforms the
    coordinates that the previous one kept."""
    i = torch.arange(dim)
    return [((i + k) % 2).to(torch.float32) for k in range(n_layers)]


class RealNVP(nn.Module):
    """A flow of ``n_layers`` affine couplings on ℝᴰ (D = ``dim`` ≥ 2) with alternating masks
    (:func:`alternating_masks`) and the base N(0, I):

    * ``forward(x)`` → (z, log_det): z = f(x), log_det = log |det J_f(x)| = Σₖ log |det J_{f_k}|;
    * ``inverse(z)`` → x = f⁻¹(z) (the layers undone in reverse order);
    * ``log_prob(x)`` = log N(f(x); 0, I) + log |det J_f(x)| (change of variables);
    * ``sample(n, generator)`` = f⁻¹(z), z ~ N(0, I) drawn on the CPU with ``generator`` (the
      same samples on every device) and moved to the parameters' device.
    """

    def __init__(self, dim: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        _positive_int("dim", dim)
        if dim < 2:
            raise ValueError(f"a coupling flow needs dim ≥ 2 (a kept and a transformed part), got {dim}")
        _positive_int("n_layers", n_layers)
        self.dim = dim
        self.layers = nn.ModuleList(
            [AffineCoupling(dim, hidden, mask) for mask in alternating_masks(dim, n_layers)]
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log |det J_f(x)|) for x of shape (n, D)."""
        _check_points(x, self.dim)
        log_det = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """x = f⁻¹(z) = f₁⁻¹(… f_K⁻¹(z))."""
        _check_points(z, self.dim, "z")
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = −½‖f(x)‖² − (D/2) log 2π + log |det J_f(x)|, shape (n,), in nats."""
        z, log_det = self(x)
        return -0.5 * z.pow(2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi) + log_det

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples f⁻¹(z), z ~ N(0, I_D), shape (n, D), on the parameters' device."""
        _positive_int("n", n)
        p = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator, dtype=p.dtype).to(p.device)
        return self.inverse(z)


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + u with u ~ U[0, 1)ᴰ independent per entry, for ``x`` holding non-negative integer
    levels (any dtype; integer tensors become float32). u is drawn on the CPU with ``generator``
    and moved to x's device. A density p trained on x + u bounds the discrete model
    P(x) = ∫_{[0,1)ᴰ} p(x + u) du: E_u[log p(x + u)] ≤ log P(x) (Jensen)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    if x.numel() and (not torch.equal(x, torch.round(x)) or bool((x < 0).any())):
        raise ValueError("x must hold non-negative integer levels (e.g. 0/1 pixels, or 0…255)")
    u = torch.rand(tuple(x.shape), generator=generator, dtype=x.dtype).to(x.device)
    return x + u


def bits_per_dim(nll_nats: float | torch.Tensor, dims: int) -> float | torch.Tensor:
    """A negative log-likelihood of one D-dimensional datum in nats → bits per dimension:
    nll / (D · ln 2)."""
    _positive_int("dims", dims)
    return nll_nats / (dims * math.log(2))
