"""Interpretability and adversarial examples: saliency, occlusion, attacks, substitutes, defences.

Notation: a classifier f maps an image x ∈ [0, 1]^{C×H×W} to class scores (logits) f(x) ∈ ℝᴷ;
its probabilities are softmax(f(x)) and its loss is the cross-entropy
ℓ(x, y) = −log softmax(f(x))_y.

* Saliency (Simonyan et al., 2014): M_ij = max_c |∂f_t(x)/∂x_cij|, the gradient of the class
  *score* (not of the probability).
* Occlusion (Zeiler & Fergus, 2014): P_ab = softmax(f(x with a patch at (a, b) set to v))_t.
* FGSM (Goodfellow et al., 2015): x' = clip_[0,1](x + ε sign ∇ₓℓ(x, y)); targeted towards t:
  x' = clip_[0,1](x − ε sign ∇ₓℓ(x, t)).
* PGD / iterative FGSM (Kurakin et al., 2017; Madry et al., 2018): repeated signed steps of size
  α, each followed by the projection onto {x' : ‖x' − x‖_∞ ≤ ε, 0 ≤ x' ≤ 1}.
* Expectation over transformation (Athalye et al., 2018): the same iteration on
  E_{τ∼T} ℓ(τ(x'), y), its gradient estimated by (1/S) Σₛ ∇ₓℓ(τₛ(x'), y).
* Substitute training (Papernot et al., 2017): label a seed set S₀ by querying the target, train
  a substitute F, grow S_{ρ+1} = S_ρ ∪ {x + λ sign ∂F_{Õ(x)}(x)/∂x : x ∈ S_ρ}, repeat.
* Defensive distillation (Papernot et al., 2016): train at temperature T, softmax(f(x)/T); the
  student is trained on the teacher's soft labels at T and deployed at T = 1.
* Adversarial training (Goodfellow et al., 2015): minimise α ℓ(x, y) + (1 − α) ℓ(x_FGSM, y).
* Projection onto a generator's range (Samangouei et al., 2018, Defense-GAN): classify G(ẑ) with
  ẑ = argmin_z ‖G(z) − x‖².
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from gencourse.nets import mlp, train_classifier
from gencourse.train import fit

Transform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


# --------------------------------------------------------------------------------------------
# helpers


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _check_images(x: torch.Tensor, name: str = "x") -> None:
    if not torch.is_tensor(x) or x.dim() != 4:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"{name} must be a batch of images of shape (N, C, H, W), got {shape}")


def _labels(y: int | torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """Broadcast an int or a tensor of n labels to a long tensor of shape (n,)."""
    y = torch.as_tensor(y, dtype=torch.long, device=device)
    if y.dim() == 0:
        return y.expand(n)
    if y.shape != (n,):
        raise ValueError(f"expected {n} labels (or one int), got shape {tuple(y.shape)}")
    return y


def _check_eps(eps: float, name: str = "eps") -> None:
    if not eps >= 0:
        raise ValueError(f"{name} must be non-negative, got {eps}")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """The predicted classes argmax_k f_k(x), shape (N,), on the CPU."""
    _check_images(x)
    device = _device(model)
    return torch.cat([model(x[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(x), batch)])


def attack_success(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> float:
    """Untargeted: the fraction of x_adv with argmax f ≠ y; targeted: with argmax f = y (the target)."""
    pred = predict(model, x_adv)
    hit = pred == y.cpu()
    return float((hit if targeted else ~hit).float().mean())


def input_gradient(
    model: nn.Module,
    x: torch.Tensor,
    y: int | torch.Tensor,
    transform: Transform | None = None,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """∇ₓ ℓ(x, y) per example (the gradient of the summed cross-entropy); with ``transform``,
    the Monte Carlo estimate (1/S) Σₛ ∇ₓ ℓ(τₛ(x), y) of ∇ₓ E_τ ℓ(τ(x), y), τₛ = transform draws."""
    _check_images(x)
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    x = x.detach().to(_device(model)).requires_grad_(True)
    y = _labels(y, len(x), x.device)
    total = torch.zeros_like(x)
    for _ in range(n_samples if transform is not None else 1):
        xt = transform(x, generator) if transform is not None else x
        loss = F.cross_entropy(model(xt), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
        total += g
    return total / (n_samples if transform is not None else 1)


# --------------------------------------------------------------------------------------------
# interpretability


def saliency(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
    """Saliency map M_ij = max_c |∂f_t(x)/∂x_cij| of the class score f_t (a logit, not the
    softmax), shape (N, H, W) (Simonyan et al., 2014)."""
    _check_images(x)
    x = x.detach().to(_device(model)).requires_grad_(True)
    t = _labels(target, len(x), x.device)
    scores = model(x).gather(1, t[:, None]).sum()
    (g,) = torch.autograd.grad(scores, x)
    return g.abs().amax(dim=1)


@torch.no_grad()
def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    size: int,
    stride: int,
    fill: float | torch.Tensor = 0.5,
) -> torch.Tensor:
    """Occlusion map (Zeiler & Fergus, 2014): P[n, a, b] = softmax(f(x̃))_t where x̃ is xₙ with the
    size×size patch whose top-left corner is (a·stride, b·stride) replaced by ``fill`` (a grey
    level, or a tensor broadcastable to x whose values are pasted in). Shape
    (N, ⌊(H − size)/stride⌋ + 1, ⌊(W − size)/stride⌋ + 1)."""
    _check_images(x)
    n, c, h, w = x.shape
    if not (1 <= size <= min(h, w)) or stride < 1:
        raise ValueError(f"need 1 ≤ size ≤ {min(h, w)} and stride ≥ 1, got size={size}, stride={stride}")
    device = _device(model)
    x = x.to(device)
    t = _labels(target, n, device)
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=device).expand_as(x)
    tops, lefts = range(0, h - size + 1, stride), range(0, w - size + 1, stride)
    out = torch.empty(n, len(tops), len(lefts), device=device)
    for i, top in enumerate(tops):
        xs = x.unsqueeze(1).repeat(1, len(lefts), 1, 1, 1)  # (n, positions, c, h, w)
        for k, left in enumerate(lefts):
            rows, cols = slice(top, top + size), slice(left, left + size)
            xs[:, k, :, rows, cols] = fill_t[:, :, rows, cols]
        probs = F.softmax(model(xs.view(-1, c, h, w)), dim=-1).view(n, len(lefts), -1)
        out[:, i] = probs.gather(2, t[:, None, None].expand(n, len(lefts), 1)).squeeze(2)
    return out


# --------------------------------------------------------------------------------------------
# attacks


def fgsm(
    model: nn.Module, x: torch.Tensor, y: int | torch.Tensor, eps: float, targeted: bool = False
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al., 2015), clipped to [0, 1]:
    x' = clip(x + ε sign ∇ₓℓ(x, y)); with ``targeted``, y is the target and
    x' = clip(x − ε sign ∇ₓℓ(x, y)). Where the gradient is exactly zero, x does not move."""
    _check_eps(eps)
    g = input_gradient(model, x, y)
    step = -eps if targeted else eps
    return (x.to(g.device) + step * g.sign()).clamp(0, 1).detach()


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Π onto {x' : ‖x' − x‖_∞ ≤ ε} ∩ [0, 1]ⁿ (a box, so coordinate-wise clipping)."""
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0, 1)


def _iterate(
    model: nn.Module,
    x: torch.Tensor,
    y: int | torch.Tensor,
    eps: float,
    step_size: float | None,
    steps: int,
    targeted: bool,
    transform: Transform | None,
    n_samples: int,
    random_start: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    _check_images(x)
    _check_eps(eps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    alpha = 2.5 * eps / steps if step_size is None else step_size
    _check_eps(alpha, "step_size")
    x = x.detach().to(_device(model))
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator).to(x.device)
        x_adv = _project(x + eps * (2 * noise - 1), x, eps)
    sign = -1.0 if targeted else 1.0
    for _ in range(steps):
        g = input_gradient(model, x_adv, y, transform, n_samples, generator)
        x_adv = _project(x_adv + sign * alpha * g.sign(), x, eps)
    return x_adv.detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: int | torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    targeted: bool = False,
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent in the L∞ ball (iterative FGSM): ``steps`` signed steps of
    size α (default 2.5 ε / steps), x_{k+1} = Π_{‖·−x‖_∞ ≤ ε, [0,1]}(x_k ± α sign ∇ℓ(x_k, y)),
    + for untargeted, − towards a target; optionally from a uniform random start in the ball."""
    return _iterate(model, x, y, eps, step_size, steps, targeted, None, 1, random_start, generator)


def eot_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: int | torch.Tensor,
    eps: float,
    transform: Transform,
    steps: int = 10,
    n_samples: int = 8,
    step_size: float | None = None,
    targeted: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Expectation over transformation (Athalye et al., 2018): PGD on E_τ ℓ(τ(x'), y), each step's
    gradient averaged over ``n_samples`` draws τ = transform(·, generator) (which must be
    differentiable in its input)."""
    return _iterate(model, x, y, eps, step_size, steps, targeted, transform, n_samples, False, generator)


@torch.no_grad()
def accuracy_under_transform(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    transform: Transform,
    n_samples: int = 20,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per example, the fraction of ``n_samples`` random transformations τ for which
    argmax f(τ(x)) = y (a Monte Carlo estimate of P_τ[f classifies τ(x) as y]); shape (N,)."""
    _check_images(x)
    device = _device(model)
    x, y = x.to(device), y.to(device)
    hits = torch.zeros(len(x), device=device)
    for _ in range(n_samples):
        hits += (model(transform(x, generator)).argmax(1) == y).float()
    return (hits / n_samples).cpu()


# --------------------------------------------------------------------------------------------
# margins and the distance to the decision boundary


@torch.no_grad()
def logit_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """m(x) = f_y(x) − max_{j≠y} f_j(x): positive iff x is classified as y; shape (N,)."""
    logits = model(x.to(_device(model)))
    y = _labels(y, len(x), logits.device)
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return (true - other).cpu()


def linearised_distance(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """First-order L∞ distance to the boundary with the runner-up class j: with
    m(x) = f_y(x) − f_j(x) ≈ m(x₀) + ∇m·(x − x₀), the smallest ‖δ‖_∞ with m(x₀ + δ) = 0 is
    m(x₀) / ‖∇ₓm(x₀)‖₁ (Hölder's inequality), attained at δ = −ε sign ∇m. Shape (N,)."""
    _check_images(x)
    x = x.detach().to(_device(model)).requires_grad_(True)
    logits = model(x)
    y = _labels(y, len(x), x.device)
    j = logits.detach().scatter(1, y[:, None], float("-inf")).argmax(1)
    m = logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, j[:, None]).squeeze(1)
    (g,) = torch.autograd.grad(m.sum(), x)
    return (m.detach() / g.flatten(1).abs().sum(1)).cpu()


@torch.no_grad()
def _misclassified_along(model: nn.Module, x: torch.Tensor, d: torch.Tensor, y: torch.Tensor, eps):
    xe = (x + eps.view(-1, 1, 1, 1) * d).clamp(0, 1)
    return model(xe).argmax(1) != y


def boundary_distance(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    max_eps: float = 1.0,
    n_grid: int = 20,
    refine: int = 12,
) -> torch.Tensor:
    """The distance ε to the decision boundary along the FGSM ray x(ε) = clip(x + ε sign ∇ₓℓ(x, y)):
    the first ε on a grid of ``n_grid`` points in (0, max_eps] at which argmax f(x(ε)) ≠ y,
    refined by ``refine`` bisection steps (so accurate to max_eps / n_grid / 2^refine if the
    class changes once in that grid cell). 0 for examples already misclassified, +inf for
    examples never misclassified on the ray; shape (N,)."""
    _check_images(x)
    _check_eps(max_eps, "max_eps")
    device = _device(model)
    x = x.detach().to(device)
    y = _labels(y, len(x), device)
    d = input_gradient(model, x, y).sign()
    n = len(x)
    dist = torch.full((n,), math.inf, device=device)
    lo = torch.zeros(n, device=device)
    dist[_misclassified_along(model, x, d, y, lo)] = 0.0
    found = dist == 0
    for eps in torch.linspace(max_eps / n_grid, max_eps, n_grid).tolist():
        e = torch.full((n,), eps, device=device)
        new = _misclassified_along(model, x, d, y, e) & ~found
        dist[new] = eps
        lo[~found & ~new] = eps
        found |= new
    hi = dist.clone()
    todo = found & (dist > 0)
    for _ in range(refine):
        mid = (lo + hi) / 2
        wrong = _misclassified_along(model, x, d, y, mid)
        hi = torch.where(todo & wrong, mid, hi)
        lo = torch.where(todo & ~wrong, mid, lo)
    return torch.where(todo, hi, dist).cpu()


# --------------------------------------------------------------------------------------------
# physical-world transformations


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image xₙ with its own Gaussian of standard deviation σₙ pixels: separable kernel
    k(d) ∝ exp(−d²/2σ²) on |d| ≤ r = ⌈3 max σ⌉, normalised to sum 1, zero padding. σ = 0 is
    the identity."""
    _check_images(x)
    n, c, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(n)
    r = max(1, math.ceil(3 * float(sigma.max())))
    d = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(d**2) / (2 * sigma.clamp(min=1e-6)[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n·c, 2r+1)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), padding=(0, r), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), padding=(r, 0), groups=n * c)
    return y.view(n, c, h, w)


def warp(x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Rotate each image by ``angle`` degrees (counter-clockwise as displayed) and zoom by
    ``scale`` about its centre (bilinear, zeros outside): output pixel u samples the input at
    R(angle)⁻¹ u / scale in centred coordinates."""
    _check_images(x)
    n = len(x)
    a = torch.deg2rad(torch.as_tensor(angle, dtype=x.dtype, device=x.device).expand(n))
    s = torch.as_tensor(scale, dtype=x.dtype, device=x.device).expand(n)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    zero = torch.zeros_like(cos)
    # grid coordinates: first = column (right), second = row (down); a counter-clockwise rotation
    # on screen maps the output point (u, v) to the input point (cos·u − sin·v, sin·u + cos·v).
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class RandomTransform:
    """A simulated print-and-photograph channel τ (Kurakin et al., 2017; Athalye et al., 2018):
    τ(x) = clip(b · blur_σ(warp_{θ,s}(x)) + ν ξ, 0, 1) with θ ~ U[−max_angle, max_angle] degrees,
    s ~ U[scale], σ ~ U[blur] pixels, b ~ U[brightness] and ξ ~ N(0, I), drawn per image.
    Differentiable in x (for expectation-over-transformation attacks)."""

    max_angle: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    blur: tuple[float, float] = (0.0, 1.0)
    brightness: tuple[float, float] = (0.7, 1.0)
    noise: float = 0.05

    def sample(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw n sets of parameters: ``angle``, ``scale``, ``sigma``, ``brightness``."""

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator)

        return {
            "angle": uniform(-self.max_angle, self.max_angle),
            "scale": uniform(*self.scale),
            "sigma": uniform(*self.blur),
            "brightness": uniform(*self.brightness),
        }

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """τ(x) for a fresh draw of the parameters (and of the noise) per image."""
        p = {k: v.to(x.device) for k, v in self.sample(len(x), generator).items()}
        y = gaussian_blur(warp(x, p["angle"], p["scale"]), p["sigma"])
        y = p["brightness"].view(-1, 1, 1, 1) * y
        if self.noise > 0:
            y = y + self.noise * torch.randn(x.shape, generator=generator).to(x.device)
        return y.clamp(0, 1)


# --------------------------------------------------------------------------------------------
# black-box attacks: the substitute


def substitute_net(hidden: Sequence[int] = (200, 200), in_dim: int = 784, n_classes: int = 10) -> nn.Module:
    """A small MLP classifier (flatten → hidden ReLU layers → logits), the substitute's architecture
    (the attacker need not know the target's)."""
    return nn.Sequential(nn.Flatten(), mlp([in_dim, *hidden, n_classes]))


def jacobian_augment(
    substitute: nn.Module, x: torch.Tensor, labels: torch.Tensor, lam: float = 0.1
) -> torch.Tensor:
    """Papernot et al.'s Jacobian-based augmentation: x + λ sign(∂F_{Õ(x)}(x)/∂x), F the
    substitute's class scores (logits) and Õ(x) the label the oracle gave x; clipped to [0, 1]."""
    _check_images(x)
    x = x.detach().to(_device(substitute)).requires_grad_(True)
    labels = _labels(labels, len(x), x.device)
    (g,) = torch.autograd.grad(substitute(x).gather(1, labels[:, None]).sum(), x)
    return (x + lam * g.sign()).clamp(0, 1).detach()


def train_substitute(
    oracle: Callable[[torch.Tensor], torch.Tensor],
    substitute: nn.Module,
    seed_images: torch.Tensor,
    rounds: int = 6,
    epochs: int = 10,
    lam: float = 0.1,
    tau: int | None = None,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    eval_images: torch.Tensor | None = None,
) -> dict[str, list[float]]:
    """Papernot et al.'s substitute training: S₀ = ``seed_images`` labelled by ``oracle`` (which
    returns labels only); for ρ = 0 … rounds − 1, train the substitute for ``epochs`` passes over
    S_ρ (continuing from its current weights), then, except after the last round,
    S_{ρ+1} = S_ρ ∪ jacobian_augment(S_ρ, λ_ρ) with the new points labelled by the oracle.
    λ_ρ = λ, or with ``tau`` the periodic step λ_ρ = λ (−1)^⌊ρ/τ⌋ (a negative λ moves points
    against the label's score, towards the decision boundary).

    Returns ``{"round", "n_images", "n_queries", "loss", "agreement"}`` per round: the training set
    size, the oracle queries made so far, the mean loss of the round's last epoch, and the
    fraction of ``eval_images`` on which the substitute agrees with the oracle (nan without them;
    those queries are the experimenter's, not counted)."""
    _check_images(seed_images, "seed_images")
    if rounds < 1 or epochs < 1:
        raise ValueError(f"rounds and epochs must be at least 1, got {rounds}, {epochs}")
    if tau is not None and tau < 1:
        raise ValueError(f"tau must be a positive integer or None, got {tau}")
    x = seed_images.detach().cpu()
    y = oracle(x).cpu()
    n_queries = len(x)
    eval_labels = oracle(eval_images).cpu() if eval_images is not None else None
    history: dict[str, list[float]] = {k: [] for k in ("round", "n_images", "n_queries", "loss", "agreement")}
    for rho in range(rounds):
        bs = min(batch_size, len(x))
        per_epoch = math.ceil(len(x) / bs)
        h = train_classifier(substitute, x, y, epochs * per_epoch, bs, lr, seed + rho)
        agreement = math.nan
        if eval_images is not None:
            agreement = float((predict(substitute, eval_images) == eval_labels).float().mean())
        history["round"].append(rho)
        history["n_images"].append(len(x))
        history["n_queries"].append(n_queries)
        history["loss"].append(sum(h["loss"][-per_epoch:]) / per_epoch)
        history["agreement"].append(agreement)
        if rho < rounds - 1:
            lam_rho = lam if tau is None else lam * (-1) ** (rho // tau)
            x_new = jacobian_augment(substitute, x, y, lam_rho).cpu()
            y_new = oracle(x_new).cpu()
            n_queries += len(x_new)
            x, y = torch.cat([x, x_new]), torch.cat([y, y_new])
    return history


# --------------------------------------------------------------------------------------------
# defences: distillation


class TemperatureScaled(nn.Module):
    """The logits f(x)/T of ``model``: softmax of this is the softmax at temperature T. Training
    a model through this wrapper trains it at temperature T; attacking a distilled model through
    it undoes the scaling that saturates its softmax."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.model, self.temperature = model, temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


@torch.no_grad()
def soft_labels(model: nn.Module, x: torch.Tensor, temperature: float, batch: int = 1000) -> torch.Tensor:
    """The teacher's soft labels q = softmax(f(x)/T), shape (N, K), on the CPU."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    device = _device(model)
    return torch.cat(
        [
            F.softmax(model(x[i : i + batch].to(device)) / temperature, -1).cpu()
            for i in range(0, len(x), batch)
        ]
    )


def distillation_loss(logits: torch.Tensor, soft_targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """The cross-entropy with soft labels at temperature T, averaged over the batch:
    −(1/N) Σₙ Σₖ qₙₖ log softmax(f(xₙ)/T)ₖ."""
    if logits.shape != soft_targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and soft targets {tuple(soft_targets.shape)} differ")
    return -(soft_targets * F.log_softmax(logits / temperature, -1)).sum(-1).mean()


def train_distilled(
    student: nn.Module,
    images: torch.Tensor,
    soft_targets: torch.Tensor,
    temperature: float,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train ``student`` by Adam on :func:`distillation_loss` against the teacher's soft labels at
    temperature T (Papernot et al., 2016); returns the history ``{"step", "loss"}``."""
    if len(images) != len(soft_targets):
        raise ValueError(f"{len(images)} images but {len(soft_targets)} soft labels")
    device = _device(student)

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x, q = images[idx].to(device), soft_targets[idx].to(device)
        return {"loss": distillation_loss(student(x), q, temperature)}

    return fit(student, len(images), loss_fn, steps, batch_size, lr, seed, "distillation")


# --------------------------------------------------------------------------------------------
# defences: adversarial training


def adversarial_training(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int,
    alpha: float = 0.5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Adversarial training (Goodfellow et al., 2015): Adam on α ℓ(x, y) + (1 − α) ℓ(x', y) with
    x' = fgsm(model, x, y, ε) crafted against the current weights at every step (and held
    fixed). Returns ``{"step", "loss", "clean_loss", "adv_loss"}``."""
    _check_eps(eps)
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    device = _device(model)

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x, y = images[idx].to(device), labels[idx].to(device)
        x_adv = fgsm(model, x, y, eps)
        clean, adv = F.cross_entropy(model(x), y), F.cross_entropy(model(x_adv), y)
        return {"loss": alpha * clean + (1 - alpha) * adv, "clean_loss": clean, "adv_loss": adv}

    return fit(model, len(images), loss_fn, steps, batch_size, lr, seed, "adversarial training")


# --------------------------------------------------------------------------------------------
# generative models: attacking an autoencoder, projecting onto a generator's range


def latent_attack(
    encode: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    z_target: torch.Tensor,
    eps: float,
    steps: int = 50,
    step_size: float | None = None,
) -> torch.Tensor:
    """An attack on an autoencoder's input (the "latent attack" of Kos et al., 2018): minimise
    ‖enc(x') − z_target‖² over ‖x' − x‖_∞ ≤ ε, 0 ≤ x' ≤ 1, by signed projected steps of size α
    (default 2.5 ε / steps), so that the decoder reconstructs x' as the target's image."""
    _check_images(x)
    _check_eps(eps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    alpha = 2.5 * eps / steps if step_size is None else step_size
    x = x.detach()
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = (encode(x_adv) - z_target).pow(2).sum()
        (g,) = torch.autograd.grad(loss, x_adv)
        x_adv = _project(x_adv.detach() - alpha * g.sign(), x, eps)
    return x_adv.detach()


def project_to_range(
    generate: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    latent_dim: int,
    steps: int = 100,
    lr: float = 0.05,
    restarts: int = 4,
    z_init: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Defense-GAN's projection (Samangouei et al., 2018): ẑ = argmin_z ‖G(z) − x‖², by Adam from
    ``restarts`` starts z ~ N(0, I) (plus ``z_init`` if given, e.g. an encoder's output), keeping
    per example the start with the smallest final error. ``generate`` maps (M, k) codes to
    images (differentiably). Returns (G(ẑ), ẑ)."""
    _check_images(x)
    if restarts < 0 or (restarts == 0 and z_init is None):
        raise ValueError("need at least one start: restarts ≥ 1 or a z_init")
    n, device = len(x), x.device
    starts = [torch.randn(n, latent_dim, generator=generator).to(device) for _ in range(restarts)]
    if z_init is not None:
        starts.insert(0, z_init.detach().to(device))
    r = len(starts)
    z = torch.cat(starts).clone().requires_grad_(True)  # (r·n, k), start-major
    target = x.detach().repeat(r, 1, 1, 1)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = (generate(z) - target).pow(2).sum()
        (z.grad,) = torch.autograd.grad(loss, z)
        opt.step()
    with torch.no_grad():
        images = generate(z)
        err = (images - target).flatten(1).pow(2).sum(1).view(r, n)
        best = err.argmin(0)
        pick = best * n + torch.arange(n, device=device)
    return images[pick].detach(), z.detach()[pick]


def on_manifold_attack(
    model: nn.Module,
    generate: Callable[[torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    y: torch.Tensor,
    radius: float,
    steps: int = 50,
    step_size: float | None = None,
) -> torch.Tensor:
    """An adversarial example *on* the generator's range: maximise ℓ(f(G(z')), y) over
    ‖z' − z‖₂ ≤ radius by normalised gradient ascent z' ← Π(z' + α g/‖g‖₂), α default
    2.5 radius / steps. Returns z'; G(z') lies in the range, so projecting it changes nothing."""
    _check_eps(radius, "radius")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    alpha = 2.5 * radius / steps if step_size is None else step_size
    z0 = z.detach()
    y = _labels(y, len(z0), z0.device)
    zk = z0.clone()
    for _ in range(steps):
        zk.requires_grad_(True)
        loss = F.cross_entropy(model(generate(zk)), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, zk)
        zk = zk.detach() + alpha * g / g.norm(dim=1, keepdim=True).clamp(min=1e-12)
        delta = zk - z0
        zk = z0 + delta * (radius / delta.norm(dim=1, keepdim=True).clamp(min=1e-12)).clamp(max=1)
    return zk.detach()
