"""Tests of gencourse.adversarial against independent computations: closed forms for linear models,
NumPy/SciPy references, finite differences and brute-force loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.special import softmax as np_softmax
from torch import nn
from torch.nn import functional as F

from gencourse.adversarial import (
    RandomTransform,
    TemperatureScaled,
    accuracy_under_transform,
    adversarial_training,
    attack_success,
    boundary_distance,
    distillation_loss,
    eot_attack,
    fgsm,
    gaussian_blur,
    input_gradient,
    jacobian_augment,
    latent_attack,
    linearised_distance,
    logit_margin,
    occlusion,
    on_manifold_attack,
    pgd,
    predict,
    project_to_range,
    saliency,
    soft_labels,
    substitute_net,
    train_distilled,
    train_substitute,
    warp,
)
from gencourse.nets import train_classifier


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: one thread is faster, and immune to a loaded machine's contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def linear_model(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Module:
    """f(x) = W flatten(x) + b with the given weights."""
    k, d = weight.shape
    lin = nn.Linear(d, k)
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(torch.zeros(k) if bias is None else bias)
    return nn.Sequential(nn.Flatten(), lin)


def rand(*shape: int, seed: int = 0, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------- FGSM


def test_fgsm_two_class_linear_closed_form():
    # ∇ₓℓ(x, y) = p_other (w_other − w_y) for two classes, so its sign is sign(w_other − w_y)
    w = randn(2, 3 * 4 * 4)
    x = rand(6, 3, 4, 4, lo=0.3, hi=0.7)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    model = linear_model(w)
    diff = (w[1 - y] - w[y]).view(6, 3, 4, 4)
    assert torch.allclose(fgsm(model, x, y, 0.1), x + 0.1 * diff.sign(), atol=1e-6)
    # targeted towards t: x − ε sign ∇ℓ(x, t) = x + ε sign(w_t − w_other)
    t = 1 - y
    assert torch.allclose(fgsm(model, x, t, 0.1, targeted=True), x + 0.1 * diff.sign(), atol=1e-6)
    # large ε: clipped to [0, 1]
    assert torch.allclose(fgsm(model, x, y, 0.5), (x + 0.5 * diff.sign()).clamp(0, 1), atol=1e-6)


def test_fgsm_multiclass_linear_matches_numpy_gradient():
    w, b = randn(5, 16, seed=1), randn(5, seed=2)
    x = rand(8, 1, 4, 4, seed=3)
    y = torch.arange(8) % 5
    p = np_softmax(x.flatten(1).numpy() @ w.numpy().T + b.numpy(), axis=1)
    grad = (p - np.eye(5)[y.numpy()]) @ w.numpy()  # ∇ₓ[−log softmax(Wx + b)_y] = Wᵀ(p − e_y)
    expected = np.clip(x.flatten(1).numpy() + 0.05 * np.sign(grad), 0, 1)
    out = fgsm(linear_model(w, b), x, y, 0.05).flatten(1).numpy()
    assert np.allclose(out, expected, atol=1e-6)
    g = input_gradient(linear_model(w, b), x, y).flatten(1).numpy()
    assert np.allclose(g, grad, atol=1e-5)


def test_fgsm_does_not_move_where_gradient_is_zero_and_checks_input():
    model = linear_model(torch.zeros(3, 16))
    x = rand(4, 1, 4, 4)
    assert torch.equal(fgsm(model, x, 0, 0.3), x)
    with pytest.raises(ValueError, match="non-negative"):
        fgsm(model, x, 0, -0.1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fgsm(model, x[0], 0, 0.1)
    with pytest.raises(ValueError, match="labels"):
        fgsm(model, x, torch.zeros(3, dtype=torch.long), 0.1)


# --------------------------------------------------------------------------- saliency, occlusion


def test_saliency_of_linear_model_is_abs_weight_max_over_channels():
    w = randn(4, 3 * 5 * 5)
    x = rand(4, 3, 5, 5)
    target = torch.tensor([0, 3, 2, 3])
    sal = saliency(linear_model(w), x, target)
    expected = w[target].view(4, 3, 5, 5).abs().amax(1)
    assert sal.shape == (4, 5, 5)
    assert torch.allclose(sal, expected)
    assert torch.allclose(saliency(linear_model(w), x, 2), w[2].view(3, 5, 5).abs().amax(0).expand(4, 5, 5))


def test_saliency_matches_finite_differences_of_the_logit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = rand(2, 2, 3, 3, seed=5).double()
    sal = saliency(model, x, 1)
    h = 1e-6
    fd = torch.zeros(2, 2, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        for idx in np.ndindex(2, 3, 3):
            e = torch.zeros_like(x)
            e[(slice(None), *idx)] = h
            fd[(slice(None), *idx)] = (model(x + e)[:, 1] - model(x - e)[:, 1]) / (2 * h)
    assert torch.allclose(sal, fd.abs().amax(1), atol=1e-7)


def test_occlusion_with_the_image_as_patch_leaves_probability_unchanged():
    model = linear_model(randn(3, 2 * 6 * 6, seed=1), randn(3, seed=2))
    x = rand(3, 2, 6, 6)
    p = F.softmax(model(x), -1)[:, 2]
    occ = occlusion(model, x, 2, size=3, stride=2, fill=x)
    assert occ.shape == (3, 2, 2)
    assert torch.allclose(occ, p[:, None, None].expand(3, 2, 2), atol=1e-6)


def test_occlusion_matches_brute_force_loop():
    w, b = randn(4, 7 * 7, seed=3), randn(4, seed=4)
    model = linear_model(w, b)
    x = rand(2, 1, 7, 7, seed=5)
    target = torch.tensor([1, 3])
    occ = occlusion(model, x, target, size=3, stride=2, fill=0.5).numpy()
    xs = x.numpy()
    for n in range(2):
        for a, top in enumerate(range(0, 5, 2)):
            for c, left in enumerate(range(0, 5, 2)):
                img = xs[n, 0].copy()
                img[top : top + 3, left : left + 3] = 0.5
                prob = np_softmax(w.numpy() @ img.ravel() + b.numpy())[target[n]]
                assert abs(occ[n, a, c] - prob) < 1e-5
    with pytest.raises(ValueError, match="size"):
        occlusion(model, x, 0, size=8, stride=1)


# ------------------------------------------------------------------------------------- PGD, EOT


def test_pgd_on_two_class_linear_model_reaches_the_fgsm_corner():
    # the gradient sign is the same everywhere, so every step moves towards the same corner of the ball
    w = randn(2, 16)
    x = rand(5, 1, 4, 4, lo=0.3, hi=0.7)
    y = torch.tensor([0, 1, 1, 0, 1])
    model = linear_model(w)
    corner = x + 0.1 * (w[1 - y] - w[y]).view(5, 1, 4, 4).sign()
    assert torch.allclose(pgd(model, x, y, 0.1, steps=5), corner, atol=1e-6)
    assert torch.allclose(fgsm(model, x, y, 0.1), corner, atol=1e-6)


def test_pgd_stays_in_the_ball_and_in_the_image_range():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 3))
    x = rand(20, 1, 4, 4)
    y = torch.arange(20) % 3
    gen = torch.Generator().manual_seed(1)
    out = pgd(model, x, y, 0.2, steps=7, step_size=0.07, random_start=True, generator=gen)
    assert (out - x).abs().max() <= 0.2 + 1e-6 and out.min() >= 0 and out.max() <= 1
    # PGD climbs the loss at least as far as the start (zero perturbation) here
    assert F.cross_entropy(model(out), y) > F.cross_entropy(model(x), y)
    again = pgd(
        model,
        x,
        y,
        0.2,
        steps=7,
        step_size=0.07,
        random_start=True,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.equal(out, again)  # seeded


def test_eot_with_identity_is_pgd_and_with_a_flip_is_pgd_on_the_flipped_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3))
    x, y = rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    ident = eot_attack(model, x, y, 0.1, lambda v, g: v, steps=4, n_samples=3)
    assert torch.allclose(ident, pgd(model, x, y, 0.1, steps=4), atol=1e-6)

    def flip(v, g):
        return v.flip(-1)

    flipped_model = nn.Sequential(_Flip(), model)
    assert torch.allclose(
        eot_attack(model, x, y, 0.1, flip, steps=4, n_samples=2),
        pgd(flipped_model, x, y, 0.1, steps=4),
        atol=1e-6,
    )


class _Flip(nn.Module):
    def forward(self, v):
        return v.flip(-1)


def test_accuracy_under_transform_is_a_monte_carlo_probability():
    w = torch.zeros(2, 16)
    w[1] = 1.0  # class 1 iff the image has ink
    model = linear_model(w, torch.tensor([0.5, 0.0]))
    x = torch.ones(200, 1, 4, 4)

    def erase_half(v, g):  # erases each image with probability 1/2
        keep = (torch.rand(len(v), generator=g) < 0.5).float().view(-1, 1, 1, 1)
        return v * keep

    acc = accuracy_under_transform(
        model, x, torch.ones(200, dtype=torch.long), erase_half, 50, torch.Generator()
    )
    assert acc.shape == (200,)
    assert abs(acc.mean().item() - 0.5) < 0.02  # s.e. = 0.5 / √10,000 = 0.005
    ident = accuracy_under_transform(model, x, torch.ones(200, dtype=torch.long), lambda v, g: v, 3)
    assert torch.equal(ident, torch.ones(200))


# -------------------------------------------------------------------------- margins, distances


def test_logit_margin_matches_numpy():
    w, b = randn(4, 9, seed=1), randn(4, seed=2)
    x = rand(10, 1, 3, 3)
    y = torch.arange(10) % 4
    logits = x.flatten(1).numpy() @ w.numpy().T + b.numpy()
    others = np.where(np.eye(4)[y.numpy()] == 1, -np.inf, logits).max(1)
    expected = logits[np.arange(10), y.numpy()] - others
    assert np.allclose(logit_margin(linear_model(w, b), x, y).numpy(), expected, atol=1e-5)


def test_boundary_distance_and_linearisation_on_a_two_class_linear_model():
    # for f_y − f_o = (w_y − w_o)·x + (b_y − b_o), the FGSM ray x + ε sign(w_o − w_y) decreases the
    # margin at rate ‖w_y − w_o‖₁, so the boundary is at ε* = m(x) / ‖w_y − w_o‖₁ (if unclipped)
    w = randn(2, 64, seed=7) * 0.1
    x = rand(200, 1, 8, 8, lo=0.3, hi=0.7, seed=8)
    model = linear_model(w, torch.tensor([1.0, 0.0]))
    y = predict(model, x)
    m = logit_margin(model, x, y)
    eps_star = m / (w[0] - w[1]).abs().sum()
    assert torch.allclose(linearised_distance(model, x, y), eps_star, rtol=1e-4)
    dist = boundary_distance(model, x, y, max_eps=0.065, n_grid=10, refine=15)
    inside, outside = eps_star < 0.064, eps_star > 0.066
    assert inside.sum() >= 20 and outside.sum() >= 20  # the test covers both cases
    assert torch.allclose(dist[inside], eps_star[inside], atol=1e-5)
    assert torch.isinf(dist[outside]).all()
    wrong = boundary_distance(model, x[:5], 1 - y[:5])
    assert torch.equal(wrong, torch.zeros(5))  # already misclassified


# ----------------------------------------------------------------------------- transformations


def test_gaussian_blur_matches_scipy():
    x = rand(3, 2, 9, 9)
    sigma = torch.tensor([0.5, 1.0, 0.8])
    out = gaussian_blur(x, sigma).numpy()
    r = math.ceil(3 * 1.0)
    for n in range(3):
        for c in range(2):
            ref = gaussian_filter(
                x[n, c].numpy().astype(np.float64),
                sigma[n].item(),
                mode="constant",
                truncate=r / sigma[n].item(),
            )
            assert np.allclose(out[n, c], ref, atol=1e-5)
    assert torch.allclose(gaussian_blur(x, torch.zeros(3)), x)


def test_warp_rotates_like_rot90_and_is_identity_at_zero():
    x = rand(2, 1, 6, 6)
    assert torch.allclose(
        warp(x, torch.tensor(90.0), torch.tensor(1.0)), torch.rot90(x, 1, (2, 3)), atol=1e-5
    )
    assert torch.allclose(
        warp(x, torch.tensor(-90.0), torch.tensor(1.0)), torch.rot90(x, -1, (2, 3)), atol=1e-5
    )
    assert torch.allclose(warp(x, torch.tensor(0.0), torch.tensor(1.0)), x, atol=1e-6)


def test_random_transform_identity_settings_seeding_and_gradient():
    x = rand(4, 1, 8, 8)
    ident = RandomTransform(max_angle=0, scale=(1, 1), blur=(0, 0), brightness=(1, 1), noise=0)
    assert torch.allclose(ident(x, torch.Generator().manual_seed(0)), x, atol=1e-6)
    t = RandomTransform()
    a, b = t(x, torch.Generator().manual_seed(3)), t(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, t(x, torch.Generator().manual_seed(4)))
    p = t.sample(1000, torch.Generator().manual_seed(0))
    assert p["angle"].abs().max() <= 15 and p["scale"].min() >= 0.9 and p["brightness"].max() <= 1.0
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(t(xg, torch.Generator().manual_seed(0)).sum(), xg)
    assert g.abs().sum() > 0


# ---------------------------------------------------------------------------- substitute training


def test_jacobian_augment_of_linear_substitute():
    w = randn(3, 16)
    x = rand(6, 1, 4, 4)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    out = jacobian_augment(linear_model(w), x, labels, lam=0.1)
    assert torch.allclose(out, (x + 0.1 * w[labels].view(6, 1, 4, 4).sign()).clamp(0, 1), atol=1e-6)


def test_train_substitute_rounds_queries_and_periodic_step():
    # with lr = 0 the linear substitute keeps its weights W, so the queried points are known in
    # closed form: round 1 queries x₀ + λ₀ sign(W_y), round 2 queries S₁ + λ₁ sign(W_y)
    w_sub, w_oracle = randn(3, 16, seed=10), randn(3, 16, seed=11)
    oracle_net, sub = linear_model(w_oracle), linear_model(w_sub)
    queried = []

    def oracle(v):
        queried.append(v.clone())
        return predict(oracle_net, v)

    seeds = rand(8, 1, 4, 4, seed=12)
    hist = train_substitute(oracle, sub, seeds, rounds=3, epochs=1, lam=0.1, tau=1, lr=0.0)
    assert hist["round"] == [0, 1, 2] and hist["n_images"] == [8, 16, 32] and hist["n_queries"] == [8, 16, 32]
    assert all(math.isnan(a) for a in hist["agreement"])
    assert torch.equal(queried[0], seeds)
    y0 = predict(oracle_net, seeds)
    s1 = (seeds + 0.1 * w_sub[y0].view(8, 1, 4, 4).sign()).clamp(0, 1)  # λ₀ = +λ
    assert torch.allclose(queried[1], s1, atol=1e-6)
    x1, y1 = torch.cat([seeds, s1]), torch.cat([y0, predict(oracle_net, s1)])
    s2 = (x1 - 0.1 * w_sub[y1].view(16, 1, 4, 4).sign()).clamp(0, 1)  # λ₁ = −λ (τ = 1)
    assert torch.allclose(queried[2], s2, atol=1e-6)
    with pytest.raises(ValueError, match="tau"):
        train_substitute(oracle, sub, seeds, tau=0)


def test_train_substitute_augmentation_towards_the_boundary_helps_a_linear_substitute():
    # 30 seeds in 16 dimensions leave the boundary poorly determined; points pushed towards it
    # (λ < 0) and labelled by the oracle pin it down, duplicates (λ = 0) add nothing
    oracle_net = linear_model(randn(3, 16, seed=13))
    seeds, held_out = rand(30, 1, 4, 4, seed=12), rand(500, 1, 4, 4, seed=13)
    agreement = {}
    for lam in (0.0, -0.1):
        torch.manual_seed(0)
        sub = substitute_net(hidden=(), in_dim=16, n_classes=3)  # a linear substitute
        hist = train_substitute(
            lambda v: predict(oracle_net, v),
            sub,
            seeds,
            rounds=4,
            epochs=50,
            lam=lam,
            lr=0.1,
            eval_images=held_out,
        )
        agreement[lam] = hist["agreement"][-1]
    assert agreement[-0.1] > 0.85 and agreement[-0.1] > agreement[0.0] + 0.1


# ----------------------------------------------------------------------------------- distillation


def test_soft_labels_and_distillation_loss_match_references():
    w, b = randn(4, 9), randn(4, seed=1)
    x = rand(5, 1, 3, 3)
    logits = x.flatten(1).numpy() @ w.numpy().T + b.numpy()
    q = soft_labels(linear_model(w, b), x, 20.0)
    assert np.allclose(q.numpy(), np_softmax(logits / 20.0, axis=1), atol=1e-6)
    assert torch.allclose(
        TemperatureScaled(linear_model(w, b), 4.0)(x), torch.from_numpy(logits).float() / 4, atol=1e-5
    )
    z = randn(5, 4, seed=2)
    y = torch.tensor([0, 3, 1, 1, 2])
    one_hot = F.one_hot(y, 4).float()
    assert torch.allclose(distillation_loss(z, one_hot, 3.0), F.cross_entropy(z / 3.0, y))
    manual = -(q.numpy() * np.log(np_softmax(z.numpy() / 3.0, axis=1))).sum(1).mean()
    assert abs(distillation_loss(z, q, 3.0).item() - manual) < 1e-5
    with pytest.raises(ValueError, match="temperature"):
        TemperatureScaled(linear_model(w), 0.0)


def test_train_distilled_student_reproduces_teacher_soft_labels():
    teacher = linear_model(randn(3, 16, seed=4), randn(3, seed=5))
    images = rand(500, 1, 4, 4, seed=6)
    q = soft_labels(teacher, images, 2.0)
    torch.manual_seed(0)
    student = linear_model(torch.zeros(3, 16))
    hist = train_distilled(student, images, q, 2.0, steps=600, batch_size=100, lr=0.05)
    assert hist["loss"][-1] < hist["loss"][0]
    assert (soft_labels(student, images, 2.0) - q).abs().max() < 0.05


# ------------------------------------------------------------------------------ adversarial training


def test_adversarial_training_at_zero_eps_is_plain_training():
    images, labels = rand(300, 1, 4, 4), torch.arange(300) % 3
    torch.manual_seed(0)
    a = linear_model(randn(3, 16) * 0.1)
    b = linear_model(randn(3, 16) * 0.1)
    adversarial_training(a, images, labels, eps=0.0, steps=20, batch_size=50, lr=0.01, seed=3)
    train_classifier(b, images, labels, steps=20, batch_size=50, lr=0.01, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)


def test_adversarial_loss_exceeds_clean_loss_for_a_linear_model():
    # the cross-entropy of a linear model is convex in x: ℓ(x + δ) ≥ ℓ(x) + ∇ℓ·δ, and ∇ℓ·δ ≥ 0 for
    # the (clipped) FGSM step, so the adversarial loss is never below the clean loss
    images, labels = rand(300, 1, 4, 4), torch.arange(300) % 3
    model = linear_model(randn(3, 16) * 0.1)
    hist = adversarial_training(model, images, labels, eps=0.1, steps=30, batch_size=50, lr=0.01)
    assert all(a >= c - 1e-6 for a, c in zip(hist["adv_loss"], hist["clean_loss"], strict=True))
    assert np.allclose(
        np.array(hist["loss"]), 0.5 * np.array(hist["adv_loss"]) + 0.5 * np.array(hist["clean_loss"])
    )


# --------------------------------------------------------------------------------- generative models


def test_latent_attack_with_identity_encoder_moves_towards_the_target():
    x = rand(3, 1, 4, 4, lo=0.3, hi=0.7)
    far = rand(3, 1, 4, 4, seed=9)
    far = torch.where(far > x, x + 0.3, x - 0.3)  # every pixel more than ε away

    def encode(v):
        return v.flatten(1)

    out = latent_attack(encode, x, far.flatten(1), eps=0.1, steps=10)
    assert torch.allclose(out, x + 0.1 * (far - x).sign(), atol=1e-6)
    near = x + 0.05 * (2 * rand(3, 1, 4, 4, seed=10) - 1)
    out = latent_attack(encode, x, near.flatten(1), eps=0.1, steps=200, step_size=0.001)
    assert (out - near).abs().max() <= 0.001 + 1e-6


def test_project_to_range_of_a_linear_generator_is_least_squares():
    a = randn(16, 3, seed=1)

    def generate(z):
        return (z @ a.T).view(-1, 1, 4, 4)

    x = randn(5, 1, 4, 4, seed=2)
    proj, z = project_to_range(
        generate, x, 3, steps=600, lr=0.05, restarts=2, generator=torch.Generator().manual_seed(0)
    )
    z_ls = torch.linalg.lstsq(a, x.flatten(1).T).solution.T
    assert torch.allclose(z, z_ls, atol=1e-3)
    assert torch.allclose(proj, generate(z_ls), atol=1e-3)
    # a point already in the range is its own projection
    p2, _ = project_to_range(generate, generate(z_ls), 3, steps=10, restarts=0, z_init=z_ls)
    assert torch.allclose(p2, generate(z_ls), atol=1e-2)


def test_on_manifold_attack_on_linear_pieces_moves_radius_along_the_gradient():
    a, w = randn(16, 4, seed=3), randn(2, 16, seed=4)
    model = linear_model(w)

    def generate(z):
        return (z @ a.T).view(-1, 1, 4, 4)

    z = randn(6, 4, seed=5)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    g = (w[1 - y] - w[y]) @ a  # direction of ∇_z ℓ(f(G(z)), y) for two classes
    expected = z + 0.5 * g / g.norm(dim=1, keepdim=True)
    out = on_manifold_attack(model, generate, z, y, radius=0.5, steps=20)
    assert torch.allclose(out, expected, atol=1e-5)


# ------------------------------------------------------------------------------------- small helpers


def test_predict_and_attack_success():
    w = torch.eye(3, 9)
    x = torch.zeros(3, 1, 3, 3)
    for i in range(3):
        x[i, 0, 0, i] = 1.0  # image i lights pixel i, so the linear model predicts class i
    model = linear_model(w)
    assert torch.equal(predict(model, x), torch.tensor([0, 1, 2]))
    assert attack_success(model, x, torch.tensor([0, 1, 0])) == pytest.approx(1 / 3)
    assert attack_success(model, x, torch.tensor([0, 1, 0]), targeted=True) == pytest.approx(2 / 3)
