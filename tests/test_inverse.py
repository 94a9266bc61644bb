import math

import numpy as np
import pytest
import torch
from scipy.fft import dctn

from gencourse.inverse import (
    apply_operator,
    blend,
    box_mask,
    context_loss,
    csgm,
    csgm_loss,
    dct_matrix,
    downsample,
    downsampling_matrix,
    flicker,
    gaussian_matrix,
    inpaint,
    inpaint_video,
    lasso,
    mask_matrix,
    measure,
    nearest_latent,
    optimize_latent,
    perceptual_loss,
    project,
    srec_ratio,
    srec_search,
    steps_to_reach,
)


def linear_generator(n: int, k: int, seed: int = 0):
    W = torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) / math.sqrt(k)
    return W, (lambda z: z @ W.T)


def test_gaussian_matrix_has_variance_one_over_m_and_repeats():
    A = gaussian_matrix(200, 500, seed=3)
    assert A.shape == (200, 500)
    assert torch.equal(A, gaussian_matrix(200, 500, seed=3))
    assert not torch.equal(A, gaussian_matrix(200, 500, seed=4))
    assert abs(A.mean().item()) < 3 * math.sqrt(1 / 200 / A.numel())
    assert abs(A.var().item() * 200 - 1) < 0.02
    # E‖Av‖² = ‖v‖²: average over 400 independent matrices
    v = torch.randn(50, generator=torch.Generator().manual_seed(0))
    norms = torch.stack([gaussian_matrix(10, 50, seed=s) @ v for s in range(400)]).pow(2).sum(1)
    se = norms.std() / math.sqrt(len(norms))
    assert abs(norms.mean() - v.pow(2).sum()) < 4 * se
    with pytest.raises(ValueError):
        gaussian_matrix(0, 5)


def test_measure_adds_seeded_gaussian_noise():
    A = gaussian_matrix(30, 16, seed=0)
    x = torch.rand(4, 1, 4, 4)
    assert torch.allclose(measure(A, x), x.flatten(1) @ A.T)
    y1, y2 = measure(A, x, 0.5, seed=1), measure(A, x, 0.5, seed=1)
    assert torch.equal(y1, y2)
    noise = measure(A, torch.zeros(2000, 16), 0.5, seed=2)
    assert abs(noise.std().item() - 0.5) < 0.01
    assert torch.allclose(apply_operator(lambda v: 2 * v, x.flatten(1)), 2 * x.flatten(1))
    with pytest.raises(ValueError):
        measure(A, x, -1.0)
    with pytest.raises(ValueError):
        apply_operator(A, torch.zeros(3, 15))


def test_mask_and_downsampling_matrices_match_indexing_and_block_means():
    mask = box_mask(6, 6, hole=2)
    assert mask.sum() == 32 and not mask[2:4, 2:4].any()
    x = torch.rand(3, 36)
    assert torch.equal(x @ mask_matrix(mask).T, x[:, mask.flatten()])
    img = torch.rand(3, 6, 6)
    blocks = img.numpy().reshape(3, 3, 2, 3, 2).mean(axis=(2, 4))
    assert np.allclose(downsample(img, 2).numpy(), blocks)
    assert np.allclose((img.flatten(1) @ downsampling_matrix(6, 6, 2).T).numpy(), blocks.reshape(3, 9))
    with pytest.raises(ValueError):
        box_mask(6, 6, hole=7)
    with pytest.raises(ValueError):
        mask_matrix(torch.ones(3, 3))
    with pytest.raises(ValueError):
        downsample(img, 4)


def test_dct_matrix_is_orthonormal_and_matches_scipy():
    phi = dct_matrix(8, 6).double()
    assert torch.allclose(phi.T @ phi, torch.eye(48, dtype=torch.float64), atol=1e-6)
    x = np.random.default_rng(0).random((8, 6))
    assert np.allclose(
        (phi.T @ torch.from_numpy(x).flatten()).numpy(), dctn(x, norm="ortho").ravel(), atol=1e-6
    )


def test_lasso_recovers_an_exactly_sparse_vector_and_matches_ista():
    n, m, s = 200, 80, 5
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(2, n)
    for row in x:
        row[torch.randperm(n, generator=gen)[:s]] = 1 + torch.rand(s, generator=gen)
    A = gaussian_matrix(m, n, seed=1)
    y = measure(A, x)
    x_hat = lasso(A, y, alpha=1e-4, max_iter=50_000, tol=1e-10)
    assert torch.allclose(x_hat, x, atol=1e-2)
    # the α/m scaling: the solution satisfies the optimality (KKT) conditions of
    # ½‖y − Ax‖² + α‖x‖₁: Aᵀ(y − Ax) = α sign(x) on the support, |Aᵀ(y − Ax)| ≤ α elsewhere
    alpha = 0.1
    x_big = lasso(A, y, alpha=alpha, max_iter=50_000, tol=1e-12).double()
    corr = (y.double() - x_big @ A.double().T) @ A.double()
    on = x_big != 0
    assert on.any() and (~on).any()
    assert torch.allclose(corr[on], alpha * x_big[on].sign(), atol=1e-4)
    assert corr[~on].abs().max() <= alpha + 1e-4
    with pytest.raises(ValueError):
        lasso(A, y, 0.1, basis="wavelet")


def test_lasso_in_the_dct_basis_recovers_a_dct_sparse_image():
    n = 64
    c = torch.zeros(1, n)
    c[0, [0, 3, 9, 17]] = torch.tensor([2.0, -1.0, 1.5, 0.8])
    x = c @ dct_matrix(8, 8).T
    A = gaussian_matrix(40, n, seed=2)
    y = measure(A, x)
    x_dct = lasso(A, y, alpha=1e-4, basis="dct", shape=(8, 8), max_iter=50_000, tol=1e-6)
    x_pix = lasso(A, y, alpha=1e-4, basis="pixel", max_iter=50_000, tol=1e-6)
    assert torch.allclose(x_dct, x, atol=1e-2)
    assert (x_pix - x).norm() > 10 * (x_dct - x).norm()  # x is dense in pixels
    assert lasso(A, y, 1e-4, basis="dct", shape=(8, 8), clip=(0, 1)).max() <= 1


def test_csgm_recovers_a_point_in_the_range_of_a_linear_generator():
    n, k, m = 60, 5, 12
    W, G = linear_generator(n, k)
    z_star = torch.randn(3, k, generator=torch.Generator().manual_seed(1))
    A = gaussian_matrix(m, n, seed=2)
    y = measure(A, G(z_star))
    x_hat, z_hat = csgm(G, A, y, k, steps=400, restarts=2, lam=0.0, lr=0.1)
    assert torch.allclose(z_hat, z_star, atol=1e-3)
    assert (x_hat - G(z_star)).norm() < 1e-3 * G(z_star).norm()
    # with λ > 0 the minimiser is the ridge solution (WᵀAᵀAW + λI)⁻¹ WᵀAᵀy
    lam, B = 0.5, (A @ W).double()
    ridge = torch.linalg.solve(B.T @ B + lam * torch.eye(k, dtype=torch.float64), B.T @ y.double().T).T
    _, z_reg = csgm(G, A, y, k, steps=400, restarts=1, lam=lam, lr=0.1)
    assert torch.allclose(z_reg.double(), ridge, atol=1e-3)
    assert torch.allclose(csgm_loss(G, A, y, z_star, 0.0), torch.zeros(3), atol=1e-8)


def test_csgm_keeps_the_restart_with_the_lowest_loss():
    n = 2
    u = torch.tensor([[1.0, 0.0]])

    def G(z):  # a non-convex generator: local minima of the loss at many z
        return torch.cat([torch.sin(3 * z), 0.1 * z], dim=1) + 0 * u

    A = torch.eye(n)
    y = G(torch.tensor([[0.4], [-1.2]]))
    inits = torch.tensor([[[3.0], [2.5]], [[0.2], [-1.0]], [[-2.0], [1.0]]])  # (restarts, batch, k)
    x_hat, z_hat = csgm(G, A, y, 1, steps=300, restarts=3, lam=0.0, lr=0.02, z_init=inits)
    singles = [csgm(G, A, y, 1, steps=300, restarts=1, lam=0.0, lr=0.02, z_init=r[None]) for r in inits]
    losses = torch.stack([csgm_loss(G, A, y, z, 0.0) for _, z in singles])
    best = losses.argmin(0)
    for i in range(2):
        assert torch.allclose(z_hat[i], singles[best[i]][1][i], atol=1e-5)
    assert torch.all(csgm_loss(G, A, y, z_hat, 0.0) <= losses.min(0).values + 1e-6)
    assert losses.max() > 10 * losses.min()  # some restarts did land in worse minima
    with pytest.raises(ValueError):
        csgm(G, A, y, 1, restarts=2, z_init=inits)


def test_latent_search_moves_z_only():
    net = torch.nn.Linear(3, 4)
    before = [p.detach().clone() for p in net.parameters()]
    z0 = torch.randn(2, 3)
    z, final, trace = optimize_latent(net, lambda x, z: x.pow(2).sum(1), z0, steps=20, lr=0.1)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert all(p.grad is None for p in net.parameters())
    assert trace.shape == (20, 2) and torch.all(final < trace[0])
    assert not torch.equal(z, z0)


def test_project_measures_the_distance_to_a_linear_range():
    n, k = 30, 4
    W, G = linear_generator(n, k, seed=5)
    x = torch.randn(2, n, generator=torch.Generator().manual_seed(6))
    x_proj, _ = project(G, x, k, steps=400, restarts=1, lr=0.1)
    Q, _ = torch.linalg.qr(W)
    exact = x @ Q @ Q.T  # the orthogonal projection onto range(W)
    assert torch.allclose(x_proj, exact, atol=1e-3)


def test_srec_ratio_and_search_on_a_linear_generator():
    A = gaussian_matrix(8, 20, seed=0)
    x1, x2 = torch.randn(5, 20), torch.randn(5, 20)
    assert torch.allclose(srec_ratio(torch.eye(20), x1, x2), torch.ones(5))
    assert torch.allclose(
        srec_ratio(A, x1, x2, delta=0.1), ((x1 - x2) @ A.T).norm(dim=1).add(0.1) / (x1 - x2).norm(dim=1)
    )
    # for G(z) = Wz the infimum over the range is σ_min(AQ), Q an orthonormal basis of range(W)
    W, G = linear_generator(20, 3, seed=1)
    Q, _ = torch.linalg.qr(W)
    sigma_min = torch.linalg.svdvals(A @ Q).min()
    ratios = srec_search(G, A, 3, pairs=16, steps=800, lr=0.05)
    assert ratios.min() >= sigma_min - 1e-4 and ratios.min() < sigma_min + 1e-3


def test_inpainting_losses_and_nearest_neighbour_initialisation():
    x, y = torch.rand(3, 16), torch.rand(3, 16)
    mask = torch.rand(4, 4, generator=torch.Generator().manual_seed(0)) > 0.5
    w = mask.flatten().float()
    assert torch.allclose(context_loss(x, y, mask), ((x - y).abs() * w).sum(1))
    assert torch.allclose(blend(x, y, mask), torch.where(mask.flatten(), y, x))

    def D(v):
        return v.sum(1)

    x64 = x.double()
    assert torch.allclose(perceptual_loss(D, x64), torch.log(1 - torch.sigmoid(x64.sum(1))), atol=1e-9)
    W, G = linear_generator(16, 2)
    pool_z = torch.randn(50, 2, generator=torch.Generator().manual_seed(9))
    y = G(pool_z[[7, 21]])
    z = nearest_latent(G, y, mask, 2, pool=50, seed=9)
    assert torch.equal(z, pool_z[[7, 21]])
    with pytest.raises(ValueError):
        context_loss(x, x, torch.ones(5, dtype=torch.bool))


def test_inpaint_fills_a_hole_of_a_linear_generator_image():
    W, G = linear_generator(36, 3, seed=2)
    mask = box_mask(6, 6, hole=2)
    x = G(torch.randn(2, 3, generator=torch.Generator().manual_seed(3)))
    y = torch.where(mask.flatten(), x, torch.zeros_like(x))
    x_hat, _, trace = inpaint(G, y, mask, torch.zeros(2, 3), steps=1000, lr=0.05)
    assert torch.allclose(x_hat, x, atol=2e-2)
    assert trace.shape == (1000, 2) and torch.all(trace[-1] < 0.05 * trace[0])
    with pytest.raises(ValueError):
        inpaint(G, y, mask, torch.zeros(2, 3), steps=1, lam=1.0)


def test_steps_to_reach_and_flicker():
    trace = torch.tensor([[5.0, 5.0], [3.0, 4.0], [1.0, 4.0]])
    assert steps_to_reach(trace, 3.0).tolist() == [1, 3]
    assert steps_to_reach(trace, torch.tensor([5.0, 4.0])).tolist() == [0, 1]
    frames = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    assert flicker(frames) == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert flicker(frames, torch.tensor([True, False])) == pytest.approx(0.5)
    reference = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    # changes (1, 0), (0, 2) against (1, 1), (0, 0): errors (0, −1), (0, 2)
    assert flicker(frames, reference=reference) == pytest.approx((0 + 1 + 0 + 4) / 4)
    assert flicker(frames, reference=frames) == 0
    with pytest.raises(ValueError):
        flicker(frames, reference=frames[:2])


def test_inpaint_video_warm_starts_and_group_consistency():
    W, G = linear_generator(16, 2, seed=4)
    mask = box_mask(4, 4, hole=2)
    frames = G(torch.randn(4, 2, generator=torch.Generator().manual_seed(5)))
    z0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(6))
    _, z, trace = inpaint_video(G, frames, mask, z0, steps=0)
    assert torch.equal(z, z0[:1].expand(4, -1)) and trace.shape == (
        0,
        4,
    )  # every frame warm-started from z0[0]
    _, z_cold, _ = inpaint_video(G, frames, mask, z0, steps=0, warm_start=False)
    assert torch.equal(z_cold, z0)
    x_free, _, _ = inpaint_video(G, frames, mask, z0, steps=400, lr=0.05, window=2)
    x_tied, _, _ = inpaint_video(G, frames, mask, z0, steps=400, lr=0.05, window=2, consistency=100.0)
    assert flicker(x_tied) < flicker(x_free)
    with pytest.raises(ValueError):
        inpaint_video(G, frames, mask, z0[:3], steps=1)


@pytest.mark.parametrize(
    "kw", [dict(window=1), dict(window=2, consistency=3.0), dict(window=3, warm_start=False)]
)
def test_inpaint_video_batches_clips_as_if_each_ran_alone(kw):
    _, G = linear_generator(16, 2, seed=4)
    mask = box_mask(4, 4, hole=2)
    gen = torch.Generator().manual_seed(7)
    clips = torch.stack([G(torch.randn(5, 2, generator=gen)) for _ in range(3)])  # (C, T, n)
    z0 = torch.randn(3, 5, 2, generator=gen)
    x, z, trace = inpaint_video(G, clips, mask, z0, steps=30, lr=0.05, **kw)
    assert x.shape == clips.shape and z.shape == z0.shape and trace.shape == (30, 3, 5)
    for c in range(3):
        x_c, z_c, trace_c = inpaint_video(G, clips[c], mask, z0[c], steps=30, lr=0.05, **kw)
        torch.testing.assert_close(x[c], x_c)
        torch.testing.assert_close(z[c], z_c)
        torch.testing.assert_close(trace[:, c], trace_c)
    with pytest.raises(ValueError, match="C clips"):
        inpaint_video(G, clips, mask, z0[:, :4], steps=1)
