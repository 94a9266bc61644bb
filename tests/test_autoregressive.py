"""Tests of gencourse.autoregressive: masks by hand, causality by perturbation and by autograd,
exact normalisation by enumeration, sampling against the model's own probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gencourse import autoregressive as ar


def small_pixelcnn(seed: int = 0, **kwargs) -> ar.PixelCNN:
    torch.manual_seed(seed)
    model = ar.PixelCNN(**{"channels": 8, "n_layers": 2, **kwargs})
    # random non-zero biases so that no ReLU is dead by construction
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model.eval()


def test_causal_masks_by_hand():
    assert ar.causal_mask(3, "A").tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert ar.causal_mask(3, "B").tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert ar.causal_mask(1, "A").tolist() == [[0]] and ar.causal_mask(1, "B").tolist() == [[1]]
    m5 = ar.causal_mask(5, "A")
    assert m5.sum() == 12 and m5[:2].all() and m5[2, :2].all() and not m5[2, 2:].any() and not m5[3:].any()
    with pytest.raises(ValueError, match="known types: A, B"):
        ar.causal_mask(3, "C")
    with pytest.raises(ValueError, match="odd"):
        ar.causal_mask(4, "A")


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_ignores_the_future_by_perturbation(mask_type):
    torch.manual_seed(1)
    conv = ar.MaskedConv2d(mask_type, 2, 3, 5)
    x = torch.randn(1, 2, 6, 7)
    out = conv(x)
    h, w = 6, 7
    for i in range(h * w):
        r, c = divmod(i, w)
        future = torch.zeros(h * w, dtype=torch.bool)
        future[i + (mask_type == "B") :] = True  # B may see pixel i itself
        y = x.clone()
        y[:, :, future.view(h, w)] = torch.randn_like(y[:, :, future.view(h, w)])
        assert torch.allclose(conv(y)[:, :, r, c], out[:, :, r, c], atol=1e-6)
    # and type A does see pixel i - 1 and the pixel above
    y = x.clone()
    y[:, :, 3, 3] += 1.0
    changed = (conv(y) - out).abs().sum(1)[0] > 1e-6
    assert changed[3, 4] and changed[4, 3] and bool(changed[3, 3]) == (mask_type == "B")


def test_pixelcnn_jacobian_is_strictly_lower_triangular():
    model = small_pixelcnn()
    h, w = 9, 12
    deps = ar.dependency_matrix(model, h, w, n_inputs=2)
    assert deps.shape == (h * w, h * w)
    assert not torch.triu(deps).any()  # output i never depends on an input j ≥ i
    r, c = 5, 3
    i = r * w + c  # an interior pixel depends on its left neighbour and on the pixel above
    assert deps[i, i - 1] and deps[i, i - w]
    field = deps[i].view(h, w)
    # the 7×7 "A" layer reaches 3 columns right on the rows above; each 3×3 "B" layer one more
    # column, but only one row higher: three rows up the field reaches c + 5, one row up only
    # c + 3 (the "blind spot" of the original PixelCNN)
    assert field[r - 3, c + 5] and not field[r - 3, c + 6]
    assert field[r - 1, c + 3] and not field[r - 1, c + 4]


def test_pixelcnn_causality_by_perturbation_without_autograd():
    model = small_pixelcnn(2)
    gen = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((1, 1, 5, 6), 0.5), generator=gen)
    with torch.no_grad():
        out = model(x)
        for i in range(30):
            r, c = divmod(i, 6)
            y = x.view(-1).clone()
            y[i:] = 1 - y[i:]  # flip pixel i and everything after it
            assert torch.allclose(model(y.view(1, 1, 5, 6))[0, 0, r, c], out[0, 0, r, c], atol=1e-6)


def test_rows_below_never_matter():
    model = small_pixelcnn(3)
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x)[:, :, :5], model(x[:, :, :5]), atol=1e-6)


def test_probabilities_of_all_binary_images_sum_to_one():
    # exact likelihood: Σ over all 2⁹ binary 3×3 images of p(x) = 1 (no normalising constant)
    model = small_pixelcnn(4)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9))).view(-1, 1, 3, 3)
    with torch.no_grad():
        logp = ar.log_likelihood(model, images)
    assert logp.shape == (512,)
    assert torch.logsumexp(logp.double(), 0).exp().item() == pytest.approx(1.0, abs=1e-5)


def test_log_likelihood_is_the_chain_rule_sum():
    model = small_pixelcnn(5)
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        total = torch.zeros(3)
        for i in range(16):
            r, c = divmod(i, 4)
            p1 = torch.sigmoid(model(x)[:, 0, r, c])
            total += torch.where(x[:, 0, r, c] == 1, p1, 1 - p1).log()
        assert torch.allclose(ar.log_likelihood(model, x), total, atol=1e-4)


def test_samples_follow_the_model_distribution():
    model = small_pixelcnn(6)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).view(-1, 1, 2, 2)
    with torch.no_grad():
        probs = ar.log_likelihood(model, images).exp().numpy()
    n = 20_000
    draws = ar.sample(model, n, (1, 2, 2), torch.Generator().manual_seed(0))
    codes = (draws.view(n, 4) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = np.bincount(codes.numpy(), minlength=16) / n
    # multinomial standard errors are below 0.0036 for n = 20,000
    assert np.abs(freq - probs).max() < 0.015
    assert 0.5 * np.abs(freq - probs).sum() < 0.03


def test_complete_keeps_the_given_pixels():
    model = small_pixelcnn(7)
    x = torch.bernoulli(torch.full((4, 1, 6, 6), 0.5), generator=torch.Generator().manual_seed(2))
    out = ar.complete(model, x, 20, torch.Generator().manual_seed(0))
    assert torch.equal(out.view(4, -1)[:, :20], x.view(4, -1)[:, :20])
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    same = ar.complete(model, x, 20, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)  # seeded
    with pytest.raises(ValueError, match="start"):
        ar.complete(model, x, 37)


def test_training_reduces_the_negative_log_likelihood():
    gen = torch.Generator().manual_seed(0)
    # a data set with structure: vertical bars (each column constant)
    cols = torch.bernoulli(torch.full((256, 1, 1, 8), 0.5), generator=gen)
    images = cols.expand(256, 1, 8, 8).contiguous()
    model = ar.PixelCNN(channels=8, n_layers=2, first_kernel=3)
    with torch.no_grad():
        before = -ar.log_likelihood(model, images).mean().item()
    hist = ar.train_pixelcnn(model, images, steps=150, batch_size=32, lr=1e-2)
    with torch.no_grad():
        after = -ar.log_likelihood(model, images).mean().item()
    assert len(hist["loss"]) == 150
    # independent pixels would need 64 log 2 ≈ 44 nats; the true entropy is 8 log 2 ≈ 5.5 nats
    assert after < 0.5 * before and after < 20
    with pytest.raises(ValueError, match="binary"):
        ar.train_pixelcnn(model, images * 0.5, steps=1)


def test_pixelcnn_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="shape"):
        ar.PixelCNN()(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="positive"):
        ar.sample(ar.PixelCNN(), 0)
