"""gencourse.flows against independent computations: autograd Jacobians, quadrature, scipy."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.autograd.functional import jacobian

from gencourse.flows import AffineCoupling, RealNVP, alternating_masks, bits_per_dim, dequantize
from gencourse.strict_device import strict_device


def randomised(module: torch.nn.Module, seed: int = 0, std: float = 0.5) -> torch.nn.Module:
    """The module in float64 with every parameter redrawn N(0, std²) (the zero-initialised last
    layers would otherwise make each coupling the identity, and every check trivial)."""
    gen = torch.Generator().manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def points(n: int, dim: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_fresh_coupling_is_the_identity():
    layer = AffineCoupling(3, 8, torch.tensor([1.0, 0.0, 1.0]))
    x = torch.randn(5, 3)
    y, log_det = layer(x)
    assert torch.equal(y, x) and torch.equal(log_det, torch.zeros(5))


@pytest.mark.parametrize("mask", [[1, 0, 1, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]])
def test_coupling_inverse_and_log_det_against_autograd(mask):
    layer = randomised(AffineCoupling(5, 16, torch.tensor(mask)), seed=sum(mask))
    x = points(6, 5)
    y, log_det = layer(x)
    assert torch.allclose(layer.inverse(y), x, atol=1e-12)
    kept = torch.tensor(mask, dtype=torch.bool)
    assert torch.equal(y[:, kept], x[:, kept])  # the kept coordinates pass unchanged
    for i in range(len(x)):
        jac = jacobian(lambda v: layer(v[None])[0][0], x[i])  # (5, 5): ∂y/∂x
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign > 0 and math.isclose(logabs.item(), log_det[i].item(), abs_tol=1e-10)
        # block triangular: a kept output depends on its own input only, a transformed output
        # on itself (diagonal exp(s)) and the kept inputs, never on another transformed input
        assert torch.equal(jac[kept], torch.eye(5, dtype=torch.float64)[kept])
        free = ~kept
        off_diag = jac[free][:, free] - torch.diag(torch.diagonal(jac[free][:, free]))
        assert torch.all(off_diag == 0)


@pytest.mark.parametrize("dim,n_layers", [(2, 4), (5, 3), (6, 6)])
def test_realnvp_inverts_and_its_log_det_is_the_jacobians(dim, n_layers):
    flow = randomised(RealNVP(dim, 12, n_layers), seed=dim)
    x = points(5, dim, seed=n_layers)
    z, log_det = flow(x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-10)
    assert torch.allclose(flow(flow.inverse(z))[0], z, atol=1e-10)
    for i in range(len(x)):
        jac = jacobian(lambda v: flow(v[None])[0][0], x[i])
        _, logabs = torch.linalg.slogdet(jac)
        assert math.isclose(logabs.item(), log_det[i].item(), abs_tol=1e-9)


def test_alternating_masks_transform_every_coordinate():
    masks = alternating_masks(5, 2)
    assert masks[0].tolist() == [0, 1, 0, 1, 0] and masks[1].tolist() == [1, 0, 1, 0, 1]
    assert torch.equal(masks[0] + masks[1], torch.ones(5))


def test_untrained_flow_is_the_standard_normal():
    flow = RealNVP(3, 8, 4).double()
    x = points(7, 3)
    expected = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(x.numpy())
    assert np.allclose(flow.log_prob(x).detach().numpy(), expected, atol=1e-12)


def test_log_prob_integrates_to_one_and_matches_the_samples():
    """Quadrature on a fine 2-D grid (midpoint rule) gives ∫ p = 1; the share of samples in a box
    matches the integral of p over it (sampling and density describe the same distribution)."""
    flow = randomised(RealNVP(2, 16, 4), seed=3, std=0.3)
    half, n = 14.0, 700
    h = 2 * half / n
    axis = torch.linspace(-half + h / 2, half - h / 2, n, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        density = flow.log_prob(grid).exp().view(n, n)
    total = density.sum().item() * h * h
    assert abs(total - 1) < 2e-3, total
    samples = flow.sample(40_000, torch.Generator().manual_seed(0))
    lo, hi = samples.median(0).values - 0.5, samples.median(0).values + 1.0  # a box around the bulk
    inside = ((samples >= lo) & (samples <= hi)).all(1).double().mean().item()
    cells = ((grid >= lo) & (grid <= hi)).all(1).view(n, n)
    mass = density[cells].sum().item() * h * h
    se = math.sqrt(mass * (1 - mass) / len(samples))
    assert 0.05 < mass < 0.95 and abs(inside - mass) < 4 * se + 2e-3, (inside, mass)


def test_one_dimensional_affine_flow_is_a_gaussian():
    """A coupling on ℝ¹ with an all-zero mask is y = x·exp(s) + t with constants s, t; with
    z = y ~ N(0, 1), x ~ N(−t·exp(−s), exp(−2s)): compare with scipy.stats.norm."""
    layer = AffineCoupling(1, 4, torch.tensor([0.0])).double()
    with torch.no_grad():
        layer.net[-1].bias.copy_(torch.tensor([0.7, -1.3], dtype=torch.float64))  # a = 0.7, t = −1.3
        layer.scale.fill_(1.5)
    s, t = 1.5 * math.tanh(0.7), -1.3
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)[:, None]
    z, log_det = layer(x)
    log_p = stats.norm.logpdf(z[:, 0].detach().numpy()) + log_det.detach().numpy()
    expected = stats.norm(loc=-t * math.exp(-s), scale=math.exp(-s)).logpdf(x[:, 0].numpy())
    assert np.allclose(log_p, expected, atol=1e-12)


def test_sampling_honours_the_generator_and_inverts():
    flow = randomised(RealNVP(4, 8, 3), seed=5, std=0.3)
    a = flow.sample(10, torch.Generator().manual_seed(7))
    b = flow.sample(10, torch.Generator().manual_seed(7))
    c = flow.sample(10, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.dtype == torch.float64
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.allclose(flow(a)[0], z, atol=1e-10)  # the sample is f⁻¹ of the drawn z


def test_bits_per_dim_is_nats_over_dims_times_ln2():
    assert math.isclose(bits_per_dim(784 * math.log(2), 784), 1.0)
    assert math.isclose(bits_per_dim(100.0, 784), 100 * math.log2(math.e) / 784)
    t = bits_per_dim(torch.tensor([0.0, 2 * math.log(2)]), 2)
    assert torch.allclose(t, torch.tensor([0.0, 1.0]))


def test_dequantize_adds_uniform_noise_within_each_level():
    x = torch.randint(0, 256, (200, 50), generator=torch.Generator().manual_seed(0))
    y = dequantize(x, torch.Generator().manual_seed(1))
    assert y.dtype == torch.float32 and y.shape == x.shape
    u = (y - x).flatten().double()
    assert torch.all(u >= 0) and torch.all(u < 1)
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3
    assert torch.equal(y, dequantize(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(y, dequantize(x, torch.Generator().manual_seed(2)))
    assert dequantize(x.double()).dtype == torch.float64


def test_the_dequantisation_bound_on_a_gaussian():
    """p = N(1.7, 0.8²) on the line; levels 0…3. P(x) = Φ((x + 1 − μ)/σ) − Φ((x − μ)/σ) exactly;
    E_u[log p(x + u)] by quadrature and by Monte Carlo over dequantize lies below log P(x)."""
    dist = stats.norm(1.7, 0.8)
    u_mid = (np.arange(10_000) + 0.5) / 10_000
    for level in range(4):
        log_big_p = math.log(dist.cdf(level + 1) - dist.cdf(level))
        quad = dist.logpdf(level + u_mid).mean()
        x = torch.full((50_000,), float(level), dtype=torch.float64)
        mc = dist.logpdf(dequantize(x, torch.Generator().manual_seed(level)).numpy())
        assert quad < log_big_p
        assert abs(mc.mean() - quad) < 4 * mc.std() / math.sqrt(len(mc))
    # the gap is KL(U[0,1) ‖ p(u | x)), p(u | x) = p(x + u) / P(x): zero only for a flat p
    flat = stats.uniform(0, 4)
    assert math.isclose(flat.logpdf(2 + u_mid).mean(), math.log(flat.cdf(3) - flat.cdf(2)), abs_tol=1e-12)


def test_strict_device_mode_runs_the_flow_on_the_device():
    with strict_device("mps") as device:
        flow = RealNVP(4, 8, 2).to(device)
        x = dequantize(torch.randint(0, 2, (6, 4)), torch.Generator().manual_seed(0)).to(device)
        assert flow.log_prob(x).device.type == "mps"
        assert flow.sample(3, torch.Generator().manual_seed(0)).device.type == "mps"
        on_device = torch.zeros(3, 4, device=device)
        assert dequantize(on_device, torch.Generator().manual_seed(0)).device.type == "mps"


@pytest.mark.parametrize(
    "make",
    [
        lambda: AffineCoupling(3, 8, torch.tensor([1.0, 0.0])),  # wrong shape
        lambda: AffineCoupling(3, 8, torch.tensor([1.0, 0.5, 0.0])),  # not binary
        lambda: AffineCoupling(3, 8, torch.ones(3)),  # transforms nothing
        lambda: AffineCoupling(0, 8, torch.ones(0)),
        lambda: AffineCoupling(2, 0, torch.tensor([1.0, 0.0])),
        lambda: RealNVP(1, 8, 2),  # a coupling needs two parts
        lambda: RealNVP(2, 8, 0),
        lambda: RealNVP(2.0, 8, 2),
        lambda: RealNVP(2, 8, 2)(torch.zeros(4, 3)),  # wrong dimension
        lambda: RealNVP(2, 8, 2)(torch.zeros(4)),  # not a batch of points
        lambda: RealNVP(2, 8, 2).log_prob(torch.zeros(4, 2, dtype=torch.long)),  # not floating
        lambda: RealNVP(2, 8, 2).inverse(torch.zeros(4, 5)),
        lambda: RealNVP(2, 8, 2).sample(0),
        lambda: dequantize(torch.tensor([0.5, 1.0])),  # not integer levels
        lambda: dequantize(torch.tensor([-1.0, 1.0])),  # negative
        lambda: dequantize([0, 1]),
        lambda: bits_per_dim(10.0, 0),
    ],
)
def test_bad_input_raises_value_error(make):
    with pytest.raises(ValueError):
        make()
