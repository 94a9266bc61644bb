"""Tests of gencourse.pacgan: packing, the mode metrics, the ensembles and their training loop,
and the theory of packed total variation."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from gencourse.divergences import tv_distance, tv_product
from gencourse.gan import MLPDiscriminator
from gencourse.pacgan import (
    HIGH_QUALITY_MIN,
    MIXTURE_CPU_PROTOCOL,
    EnsembleBatchNorm,
    EnsembleLinear,
    MaxoutDiscriminator,
    PacGANGenerator,
    Packed,
    beyond_spread,
    blur_images,
    collapsed_extremal_pair,
    gaussian_fit_samples,
    has_mode_collapse,
    lower_boundary,
    matched_maxout_hidden,
    mean_std,
    mode_stats,
    mode_stats_over_draws,
    pack,
    packing_bounds,
    pair_from_boundary,
    parameter_count,
    quality_invalid_reason,
    train_mixture_setting,
    train_pacgan,
    uncollapsed_extremal_pair,
    uniform_box_samples,
)

# ----------------------------------------------------------------------------------- packing


def test_pack_vectors_groups_consecutive_samples():
    x = torch.arange(12.0).reshape(6, 2)  # samples (0,1), (2,3), ...
    packed = pack(x, 3)
    assert packed.shape == (2, 6)
    assert packed.tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert torch.equal(pack(x, 1), x)


def test_pack_images_concatenates_channels():
    x = torch.randn(8, 3, 4, 5)
    packed = pack(x, 2)
    assert packed.shape == (4, 6, 4, 5)
    for i in range(4):  # pack i = samples 2i and 2i + 1, channels of the first then the second
        assert torch.equal(packed[i], torch.cat([x[2 * i], x[2 * i + 1]], dim=0))


def test_pack_along_member_axis():
    x = torch.randn(3, 8, 2)
    packed = pack(x, 4, dim=1)
    assert packed.shape == (3, 2, 8)
    for s in range(3):
        assert torch.equal(packed[s], pack(x[s], 4))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_pack_rejects_bad_degree(bad):
    with pytest.raises(ValueError, match="positive integer"):
        pack(torch.zeros(4, 2), bad)


def test_pack_rejects_indivisible_batch():
    with pytest.raises(ValueError, match="groups of 3"):
        pack(torch.zeros(7, 2), 3)
    with pytest.raises(ValueError, match="next axis"):
        pack(torch.zeros(6), 2)


def test_packed_wraps_any_discriminator_module_or_factory():
    torch.manual_seed(0)
    inner = MLPDiscriminator(in_dim=4, hidden=(8,))
    d = Packed(inner, 2)
    x = torch.randn(10, 2)
    assert torch.equal(d(x), inner(x.reshape(5, 4)))
    built = Packed(lambda m: MLPDiscriminator(in_dim=2 * m, hidden=(8,)), 3)
    assert built(torch.randn(9, 2)).shape == (3,)
    with pytest.raises(ValueError, match="nn.Module"):
        Packed(lambda m: "not a module", 2)


# ----------------------------------------------------------------------------------- metrics


def test_mode_stats_hand_computed():
    centers = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    std = 0.1  # high quality: within 0.3 of the nearest center
    samples = torch.tensor(
        [[0.0, 0.0], [0.1, 0.1], [0.29, 0.0], [2.0, 0.2], [1.0, 1.0], [0.0, 2.31]], dtype=torch.float32
    )
    stats = mode_stats(samples, centers, std)
    # high quality: 3 at mode 0, 1 at mode 1; (1, 1) and (0, 2.31) are too far
    assert stats["modes"] == 2
    assert stats["high_quality"] == pytest.approx(4 / 6)
    q = np.array([3 / 4, 1 / 4])
    assert stats["reverse_kl"] == pytest.approx(float(np.sum(q * np.log(q * 3))))


def test_mode_stats_uniform_and_collapsed_extremes():
    centers = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    uniform = centers.repeat(25, 1)
    assert mode_stats(uniform, centers, 0.05) == {"modes": 4, "high_quality": 1.0, "reverse_kl": 0.0}
    one = mode_stats(centers[:1].repeat(10, 1), centers, 0.05)
    assert one["modes"] == 1 and one["reverse_kl"] == pytest.approx(math.log(4))
    none = mode_stats(torch.full((5, 2), 2.5), centers, 0.05)
    assert none["modes"] == 0 and none["high_quality"] == 0 and math.isnan(none["reverse_kl"])


def test_mode_stats_matches_monte_carlo_for_the_true_mixture():
    from gencourse.data import grid_mixture

    mix = grid_mixture()
    x = mix.sample(20_000, torch.Generator().manual_seed(0))
    stats = mode_stats(x, mix.centers, mix.std)
    # ‖N(0, σ²I₂)‖ < 3σ has probability 1 − e^{−9/2} (a Rayleigh tail)
    assert stats["modes"] == 25
    assert abs(stats["high_quality"] - (1 - math.exp(-4.5))) < 0.003
    assert stats["reverse_kl"] < 0.01


def test_mode_stats_over_draws_is_mode_stats_of_each_seeded_draw():
    centers = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])

    def sample(gen: torch.Generator) -> torch.Tensor:
        return centers[torch.randint(3, (40,), generator=gen)] + 0.2 * torch.randn(40, 2, generator=gen)

    out = mode_stats_over_draws(sample, centers, 0.1, draws=3, seed=7)
    assert set(out) == {"modes", "high_quality", "reverse_kl"}
    for i in range(3):
        direct = mode_stats(sample(torch.Generator().manual_seed(7 + i)), centers, 0.1)
        assert out["modes"][i] == direct["modes"]
        assert out["high_quality"][i] == 100 * direct["high_quality"]  # per cent
        assert out["reverse_kl"][i] == direct["reverse_kl"]
    assert out["high_quality"].std() > 0  # the draws differ
    with pytest.raises(ValueError):
        mode_stats_over_draws(sample, centers, 0.1, draws=0)


def test_mean_std_drops_nan_runs():
    assert mean_std([1.0, 2.0, 3.0, math.nan]) == pytest.approx((2.0, 1.0))  # s² = (1 + 0 + 1) / 2
    mean, sd = mean_std(np.array([4.0]))
    assert mean == 4.0 and math.isnan(sd)
    assert all(math.isnan(v) for v in mean_std([math.nan, math.nan]))


def test_mode_stats_rejects_bad_shapes():
    with pytest.raises(ValueError):
        mode_stats(torch.zeros(5, 3), torch.zeros(2, 2), 0.1)
    with pytest.raises(ValueError):
        mode_stats(torch.zeros(5, 2), torch.zeros(2, 2), 0.0)


# -------------------------------------------------------------------------------- ensembles


def test_ensemble_linear_is_independent_affine_maps():
    torch.manual_seed(0)
    lin = EnsembleLinear(3, 4, members=2)
    x = torch.randn(2, 5, 3)
    y = lin(x)
    for s in range(2):
        assert torch.allclose(y[s], x[s] @ lin.weight[s] + lin.bias[s], atol=1e-6)
    assert abs(float(lin.weight.detach().std()) - 0.02) < 0.01 and float(lin.bias.detach().abs().max()) == 0


def test_ensemble_batch_norm_matches_torch_per_member_and_group():
    torch.manual_seed(0)
    bn = EnsembleBatchNorm(3, members=2, momentum=0.05)
    ref = torch.nn.BatchNorm1d(3, momentum=0.05)
    x = torch.randn(2, 8, 3) * 3 + 1
    y = bn(x, groups=2)
    for s in range(2):
        for g in range(2):
            block = x[s, 4 * g : 4 * g + 4]
            expect = (block - block.mean(0)) / torch.sqrt(block.var(0, unbiased=False) + bn.eps)
            assert torch.allclose(y[s, 4 * g : 4 * g + 4], expect, atol=1e-5)
    ref(x[0, :4])  # the running mean of member 0 averages its two groups' updates
    ref2 = copy.deepcopy(torch.nn.BatchNorm1d(3, momentum=0.05))
    ref2(x[0, 4:])
    assert torch.allclose(bn.running_mean[0, 0], (ref.running_mean + ref2.running_mean) / 2, atol=1e-6)
    assert torch.allclose(bn.running_var[0, 0], (ref.running_var + ref2.running_var) / 2, atol=1e-6)
    bn.eval()
    z = bn(x)
    assert torch.allclose(z, (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps), atol=1e-6)


def test_generator_and_maxout_discriminator_architecture():
    g = PacGANGenerator()  # the paper's: 2 → 400 × 4 (batch norm, ReLU) → 2
    assert [lin.weight.shape[1:] for lin in g.linears] == [(2, 400)] + [(400, 400)] * 3
    assert g.linears[0].bias is None and g.out.weight.shape[1:] == (400, 2)
    assert parameter_count(g) == 2 * 400 + 3 * 400 * 400 + 4 * 2 * 400 + 400 * 2 + 2
    d = MaxoutDiscriminator(in_dim=4)  # packing 2 points in the plane
    assert parameter_count(d) == 5 * 200 * 5 + 2 * 201 * 200 * 5 + 201
    assert g(torch.randn(10, 2)).shape == (10, 2) and d(torch.randn(7, 4)).shape == (7,)


def test_maxout_takes_the_max_over_pieces():
    torch.manual_seed(0)
    d = MaxoutDiscriminator(in_dim=2, hidden=3, pieces=4, depth=1, init_std=1.0)
    x = torch.randn(5, 2)
    w, b = d.layers[0].weight[0], d.layers[0].bias[0]
    h = (x @ w + b).reshape(5, 3, 4).amax(-1)
    assert torch.allclose(d(x), (h @ d.out.weight[0] + d.out.bias[0]).squeeze(1), atol=1e-6)


def test_maxout_gradient_reaches_only_the_maximising_piece():
    """∂ maxⱼ aⱼ / ∂ aᵢ = 1 for the maximising piece i and 0 for the others: the gradient of the
    first layer's weights equals the one computed with an explicit one-hot mask."""
    torch.manual_seed(0)
    d = MaxoutDiscriminator(in_dim=2, hidden=3, pieces=4, depth=1, init_std=1.0).double()
    x = torch.randn(7, 2, dtype=torch.float64)
    d(x).sum().backward()
    w, b = d.layers[0].weight[0].detach().clone().requires_grad_(), d.layers[0].bias[0].detach()
    a = (x @ w + b).reshape(7, 3, 4)
    one_hot = torch.nn.functional.one_hot(a.argmax(-1), 4).to(a.dtype)
    ((a * one_hot).sum(-1) @ d.out.weight[0].detach()).sum().backward()
    assert torch.allclose(d.layers[0].weight.grad[0], w.grad, atol=1e-12)
    assert (d.layers[0].weight.grad[0] != 0).any()


def test_ensemble_members_are_independent():
    """Member s of an ensemble computes what a one-member network with its weights computes."""
    torch.manual_seed(0)
    g, d = PacGANGenerator(hidden=16, members=3), MaxoutDiscriminator(in_dim=2, hidden=8, members=3)
    z, x = torch.randn(3, 10, 2), torch.randn(3, 6, 2)
    out_g, out_d = g(z), d(x)
    for s in range(3):
        g1, d1 = PacGANGenerator(hidden=16), MaxoutDiscriminator(in_dim=2, hidden=8)
        for one, many in ((g1, g), (d1, d)):
            state = {k: v[s : s + 1] for k, v in many.state_dict().items()}
            one.load_state_dict(state)
        assert torch.allclose(g1(z[s]), out_g[s], atol=1e-5)
        assert torch.allclose(d1(x[s]), out_d[s], atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        d(torch.randn(2, 6, 2))


def test_matched_maxout_hidden():
    target = parameter_count(MaxoutDiscriminator(in_dim=8, hidden=200))
    h = matched_maxout_hidden(target, in_dim=2)
    counts = {k: parameter_count(MaxoutDiscriminator(in_dim=2, hidden=k)) for k in (h - 1, h, h + 1)}
    assert min(counts, key=lambda k: abs(counts[k] - target)) == h


# ---------------------------------------------------------------------------------- training


def _small(members, pack_degree=1, seed=0):
    torch.manual_seed(seed)
    return (
        PacGANGenerator(hidden=16, depth=2, members=members),
        MaxoutDiscriminator(in_dim=2 * pack_degree, hidden=8, pieces=3, depth=2, members=members),
    )


def test_train_pacgan_is_seeded_and_logs_history():
    data = torch.randn(500, 2)
    runs = []
    for _ in range(2):
        g, d = _small(2, 2)
        h = train_pacgan(
            g, d, data, steps=6, pack=2, batch_size=10, eval_every=3, n_eval=50,
            evaluate=lambda x: {"mean": float(x.mean())}, seed=3,
        )  # fmt: skip
        runs.append((h, g.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert h1["d_loss"] == h2["d_loss"] and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1["step"] == list(range(6)) and h1["eval_step"] == [3, 6]
    assert len(h1["mean"]) == 2 and len(h1["mean"][0]) == 2


def test_ensemble_training_equals_training_each_member_alone():
    """The summed loss gives every member exactly its own gradient: training members one by
    one with the same data and noise gives the same weights (checked after one step)."""
    data = torch.randn(200, 2)
    g, d = _small(2)
    g0, d0 = copy.deepcopy(g), copy.deepcopy(d)
    train_pacgan(g, d, data, steps=1, batch_size=8, lr=1e-2, seed=0)
    # reproduce member 1's step by hand with its own copy
    gen = torch.Generator().manual_seed(0)
    torch.randn(2, 2500, 2, generator=gen)  # the loop draws the evaluation codes first
    idx = torch.randint(200, (2, 8), generator=gen)
    z1, z2 = torch.randn(2, 8, 2, generator=gen), torch.randn(2, 8, 2, generator=gen)
    g1, d1 = _small(1)
    for one, many in ((g1, g0), (d1, d0)):
        one.load_state_dict({k: v[1:2] for k, v in many.state_dict().items()})
    opt_d = torch.optim.Adam(d1.parameters(), lr=1e-2, betas=(0.8, 0.999))
    opt_g = torch.optim.Adam(g1.parameters(), lr=1e-2, betas=(0.8, 0.999))
    g1.train()
    with torch.no_grad():
        fake = g1(z1[1])
    loss_d = (
        torch.nn.functional.softplus(-d1(data[idx[1]])).mean() + torch.nn.functional.softplus(d1(fake)).mean()
    )
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = torch.nn.functional.softplus(-d1(g1(z2[1]))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for one, many in ((g1, g), (d1, d)):
        for name, value in one.named_parameters():
            assert torch.allclose(value[0], dict(many.named_parameters())[name][1], atol=1e-6), name


def test_unrolled_training_runs_and_differs_from_plain():
    data = torch.randn(300, 2)
    g, d = _small(2)
    g_plain, d_plain = copy.deepcopy(g), copy.deepcopy(d)
    train_pacgan(g, d, data, steps=3, batch_size=10, unroll=2, seed=1)
    train_pacgan(g_plain, d_plain, data, steps=3, batch_size=10, seed=1)
    # the discriminator follows the same path; the generator's update sees the look-ahead
    assert all(torch.isfinite(p).all() for p in g.parameters())
    assert not torch.allclose(g.out.weight, g_plain.out.weight)


def test_adam_lookahead_matches_torch_adam():
    from gencourse.pacgan import _adam_lookahead

    torch.manual_seed(0)
    w = torch.randn(5, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1, betas=(0.8, 0.999))
    for _ in range(3):  # build up some optimiser state, then compare one more step
        opt.zero_grad()
        (w**3).sum().backward()
        opt.step()
    grad = 3 * w.detach() ** 2
    new, _ = _adam_lookahead({"w": w.detach()}, (grad,), {"w": opt.state[w]}, 0.1, (0.8, 0.999))
    opt.zero_grad()
    (w**3).sum().backward()
    opt.step()
    assert torch.allclose(new["w"], w.detach(), atol=1e-6)


def test_train_mixture_setting_is_the_seeded_networks_trained_by_train_pacgan():
    from gencourse.data import grid_mixture

    mix = grid_mixture()
    data = mix.sample(2_000, torch.Generator().manual_seed(1))
    protocol = {**MIXTURE_CPU_PROTOCOL, "g_hidden": 8, "d_hidden": 6, "steps": 6}

    def evaluate(points: torch.Tensor) -> dict[str, float]:
        return mode_stats(points, mix.centers, mix.std)

    history, g, d = train_mixture_setting(
        data, protocol, 2, members=2, seed=12, evaluate=evaluate, n_eval=50, eval_every=3, desc="t"
    )
    # the same by hand: seed, generator, then discriminator, then train_pacgan
    torch.manual_seed(12)
    g1 = PacGANGenerator(2, 8, protocol["g_depth"], 2, members=2, batch_norm=False, init_std=None)
    d1 = MaxoutDiscriminator(4, 6, 5, 3, members=2, init_std=None)
    h1 = train_pacgan(
        g1, d1, data, 6, pack=2, batch_size=100, lr=1e-3, lr_d=1e-2, betas=(0.5, 0.9), lr_end=1e-4,
        seed=12, eval_every=3, evaluate=evaluate, n_eval=50, desc="t",
    )  # fmt: skip
    assert history.keys() == h1.keys() and history["modes"] == h1["modes"]
    for a, b in ((g, g1), (d, d1)):
        for (name, p), p1 in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(p, p1), name
    assert d.members == 2 and parameter_count(d) == parameter_count(d1)
    with pytest.raises(ValueError):
        train_mixture_setting(data, protocol, 0, members=2, seed=0)


def test_train_pacgan_rejects_bad_arguments():
    data = torch.randn(50, 2)
    g, d = _small(2)
    with pytest.raises(ValueError, match="members"):
        train_pacgan(g, MaxoutDiscriminator(members=3), data, steps=1)
    with pytest.raises(ValueError, match="pack"):
        train_pacgan(g, d, data, steps=1, pack=0)
    with pytest.raises(ValueError, match="batch-norm"):
        train_pacgan(g, d, data, steps=1, batch_size=10, bn_groups=3)


# ------------------------------------------------------------------------------------ theory


def _min_q_by_lp(p, q, delta):
    """min Σ qᵢ sᵢ subject to Σ pᵢ sᵢ ≥ δ, 0 ≤ sᵢ ≤ 1 (sets that may split atoms)."""
    res = linprog(q, A_ub=[-np.asarray(p)], b_ub=[-delta], bounds=[(0, 1)] * len(p))
    return res.fun


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    st.floats(0.05, 0.95),
)
def test_has_mode_collapse_matches_linear_programming(pw, qw, delta):
    if sum(pw) < 1e-3 or sum(qw) < 1e-3:
        return
    p, q = np.array(pw) / sum(pw), np.array(qw) / sum(qw)
    best = _min_q_by_lp(p, q, delta)
    for eps in (0.0, 0.5 * delta, 0.9 * delta):
        if abs(best - eps) > 1e-7:
            assert has_mode_collapse(p, q, eps, delta) == (best <= eps)


def test_lower_boundary_and_pair_from_boundary_round_trip():
    p, q = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.1, 0.3, 0.4, 0.2])
    xs, ys = lower_boundary(p, q)
    assert np.allclose(xs, [0, 0.5, 0.8, 1.0, 1.0]) and np.allclose(ys, [0, 0.1, 0.4, 0.8, 1.0])
    p2, q2 = pair_from_boundary(xs[:-1], ys[:-1])
    assert np.allclose(sorted(zip(p2, q2, strict=True)), sorted(zip(p, q, strict=True)))
    assert max(xs - ys) == pytest.approx(tv_distance(p, q))  # d_TV is the largest gap x − g(x)


def test_lecture_example_collapse_status():
    p, q1, q2 = [0.2, 0.8], [0.0, 1.0], [0.7, 0.3]  # U[0,1] vs U[0.2,1] and vs 1.4 / 0.6 (cells)
    assert has_mode_collapse(p, q1, 0.0, 0.2) and not has_mode_collapse([0.5, 0.5], q2, 0.1, 0.2)
    assert has_mode_collapse([0.5, 0.5], q2, 0.12, 0.2)  # Q₂(S) ≥ 0.6 P(S) for every S
    with pytest.raises(ValueError):
        has_mode_collapse(p, q1, 0.3, 0.2)


def _brute_tv_product(p, q, m):
    """½ Σ over all kᵐ sequences |Πp − Πq|, independent of tv_product's multinomial sum."""
    total = 0.0
    for seq in itertools.product(range(len(p)), repeat=m):
        total += abs(math.prod(p[i] for i in seq) - math.prod(q[i] for i in seq))
    return total / 2


def test_extremal_pairs_bracket_random_pairs():
    """Blackwell's ordering: a collapsed pair dominates its hull pair, an uncollapsed pair is
    dominated by its half-plane pair, for every m (checked by brute force over sequences)."""
    rng = np.random.default_rng(0)
    eps, delta = 0.1, 0.3
    seen = {True: 0, False: 0}
    for _ in range(120):
        p, q = rng.dirichlet(np.full(4, 0.7)), rng.dirichlet(np.full(4, 0.7))
        tau = tv_distance(p, q)
        xs, ys = lower_boundary(p, q)
        collapsed = has_mode_collapse(p, q, eps, delta)
        seen[collapsed] += 1
        if collapsed:
            a = float(np.sum(p[p > q]))
            ref = collapsed_extremal_pair(eps, delta, tau, a)
        else:
            j = int(np.searchsorted(xs, delta))
            beta = (ys[j] - ys[j - 1]) / (xs[j] - xs[j - 1])  # the slope of g at δ
            ref = uncollapsed_extremal_pair(eps, delta, tau, beta)
        assert tv_distance(*ref) == pytest.approx(tau, abs=1e-9)
        for m in (2, 3):
            value, bound = _brute_tv_product(p, q, m), tv_product(*ref, m)
            assert (value >= bound - 1e-9) if collapsed else (value <= bound + 1e-9)
    assert min(seen.values()) > 10


def test_packing_bounds():
    # m = 1: every pair sits at d_TV = τ
    b1 = packing_bounds(0.1, 0.2, 0.3, 1, n_grid=21)
    assert b1["collapsed_min"] == pytest.approx(0.3) and b1["uncollapsed_max"] == pytest.approx(0.3)
    b = packing_bounds(0.1, 0.2, 0.2, 3, n_grid=41)
    assert 0.2 < b["collapsed_min"] <= tv_product([0.2, 0.8], [0.0, 1.0], 3) + 1e-12
    assert b["uncollapsed_max"] <= 1 - 0.8**3 + 1e-12
    assert math.isnan(packing_bounds(0.1, 0.5, 0.3, 2)["collapsed_min"])  # τ < δ − ε: none collapse
    assert math.isnan(packing_bounds(0.1, 0.2, 0.6, 2)["uncollapsed_max"])  # τ > 1 − ε/δ: all do


def test_generator_without_batch_norm_maps_each_sample_alone():
    torch.manual_seed(0)
    g = PacGANGenerator(hidden=8, depth=2, members=2, batch_norm=False)
    assert len(g.norms) == 0 and all(lin.bias is not None for lin in g.linears)
    z = torch.randn(2, 6, 2)
    out = g(z, groups=3)
    for s in range(2):  # relu(relu(z W1 + b1) W2 + b2) Wout + bout, sample by sample
        h = z[s]
        for lin in g.linears:
            h = torch.relu(h @ lin.weight[s] + lin.bias[s])
        assert torch.allclose(out[s], h @ g.out.weight[s] + g.out.bias[s], atol=1e-6)
    assert torch.allclose(g(z[:, :1]), out[:, :1], atol=1e-6)  # no dependence on the batch


def test_separate_discriminator_learning_rate():
    """Adam's first step moves every parameter with a non-zero gradient by about lr·sign(g):
    by lr_d for the discriminator and by lr for the generator."""
    data = torch.randn(200, 2)
    g, d = _small(1)
    g0, d0 = copy.deepcopy(g), copy.deepcopy(d)
    train_pacgan(g, d, data, steps=1, batch_size=8, lr=1e-3, lr_d=1e-2, seed=0)
    d_moves = torch.cat(
        [(a - b).detach().abs().flatten() for a, b in zip(d.parameters(), d0.parameters(), strict=True)]
    )
    g_moves = torch.cat(
        [(a - b).detach().abs().flatten() for a, b in zip(g.parameters(), g0.parameters(), strict=True)]
    )
    assert abs(float(d_moves.max()) - 1e-2) < 1e-4 and abs(float(g_moves.max()) - 1e-3) < 1e-5
    with pytest.raises(ValueError, match="learning rates"):
        train_pacgan(g, d, data, steps=1, lr_d=0.0)


# ------------------------------------------------------------------------ trivial baselines


def test_uniform_box_samples_fill_the_bounding_box():
    data = torch.tensor([[-1.0, 2.0], [3.0, 5.0], [0.0, 4.0]])
    x = uniform_box_samples(data, 20_000, torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 2)
    assert x[:, 0].min() >= -1 and x[:, 0].max() <= 3 and x[:, 1].min() >= 2 and x[:, 1].max() <= 5
    # U[a, b] has mean (a + b)/2 and variance (b − a)²/12
    np.testing.assert_allclose(x.mean(0).numpy(), [1.0, 3.5], atol=0.05)
    np.testing.assert_allclose(x.var(0).numpy(), [16 / 12, 9 / 12], rtol=0.03)
    with pytest.raises(ValueError):
        uniform_box_samples(data[0], 5)


def test_gaussian_fit_samples_match_numpy_moments():
    gen = torch.Generator().manual_seed(1)
    data = torch.randn(5_000, 2, generator=gen) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]]) + torch.tensor(
        [1.0, -3.0]
    )
    ref = data.double().numpy()
    mu, cov = ref.mean(0), np.cov(ref.T, bias=True)  # the maximum-likelihood fit, independently
    x = gaussian_fit_samples(data, 200_000, torch.Generator().manual_seed(2)).double().numpy()
    np.testing.assert_allclose(x.mean(0), mu, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.02, atol=0.01)
    # the grid's fit is round: mean ≈ 0, variance 8 (+ 0.05²) per coordinate, no correlation
    from gencourse.data import grid_mixture

    grid = grid_mixture().sample(50_000, torch.Generator().manual_seed(3))
    y = gaussian_fit_samples(grid, 50_000, torch.Generator().manual_seed(4)).double().numpy()
    np.testing.assert_allclose(np.cov(y.T), np.diag([8.0025, 8.0025]), atol=0.25)


def test_quality_invalid_reason():
    assert HIGH_QUALITY_MIN == 0.70
    assert quality_invalid_reason([0.9, 0.8]) == ""
    assert quality_invalid_reason([0.7, 0.7]) == ""
    assert quality_invalid_reason([0.02, 0.02]) == "high quality 2.0 % < 70 %"
    assert quality_invalid_reason([0.5, float("nan")], threshold=0.4) == ""


def test_beyond_spread_against_hand_computation():
    a, b = [20.0, 22.0, 24.0], [10.0, 12.0, 14.0]
    # difference 10, standard error √(4/3 + 4/3) = 1.633: 10 > 2 · 1.633
    assert beyond_spread(a, b) and not beyond_spread(b, a)
    assert beyond_spread(b, a, higher_is_better=False)
    assert not beyond_spread(a, b, z=10 / math.sqrt(8 / 3) + 1e-9)
    assert beyond_spread(a, b, z=10 / math.sqrt(8 / 3) - 1e-9)
    assert not beyond_spread([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
    with pytest.raises(ValueError):
        beyond_spread([1.0], [1.0, 2.0])


def test_blur_images_matches_scipy_gaussian_filter():
    from scipy.ndimage import gaussian_filter

    x = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    sigma = 1.5
    ours = blur_images(x, sigma).numpy()
    ref = np.stack(
        [np.stack([gaussian_filter(c, sigma, mode="mirror", truncate=3.0) for c in img]) for img in x.numpy()]
    )
    assert ours.shape == x.shape
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    ones = torch.ones(1, 1, 10, 10)
    torch.testing.assert_close(blur_images(ones, 2.0), ones)  # a constant image is unchanged


def test_runs_invalid_reason_reads_high_quality_in_percent():
    from gencourse.pacgan import quality_invalid_reason, runs_invalid_reason

    assert runs_invalid_reason({"high_quality": np.array([80.0, 70.0])}) == ""
    assert runs_invalid_reason({"high_quality": [2.0, 2.0]}) == quality_invalid_reason([0.02, 0.02])
    assert runs_invalid_reason({"high_quality": [2.0, 2.0]}) == "high quality 2.0 % < 70 %"


def test_final_run_stats_takes_every_run_at_the_last_evaluation():
    from gencourse.pacgan import final_run_stats

    history = {
        "modes": [[3, 4], [5, 6]],
        "high_quality": [[0.1, 0.2], [0.5, 0.75]],
        "reverse_kl": [[1.0, 2.0], [0.5, 0.25]],
    }
    out = final_run_stats(history)
    assert out["modes"].tolist() == [5.0, 6.0] and out["high_quality"].tolist() == [50.0, 75.0]
    assert out["reverse_kl"].tolist() == [0.5, 0.25]
