import math

import pytest
import torch

from gencourse.data import binarize, load_mnist
from gencourse.divergences import kl_gaussian
from gencourse.runtime import seed_everything
from gencourse.vae import (
    VAE,
    Autoencoder,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    bernoulli_log_likelihood,
    elbo_terms,
    gaussian_log_density,
    importance_log_likelihood,
    mnist_vae,
    reparameterize,
    train_autoencoder,
    train_vae,
)


def test_reparameterize_has_the_right_moments_and_gradients():
    gen = torch.Generator().manual_seed(0)
    mu = torch.full((200_000,), 1.5, requires_grad=True)
    logvar = torch.full((200_000,), math.log(0.25), requires_grad=True)
    z = reparameterize(mu, logvar, gen)
    assert abs(z.mean().item() - 1.5) < 0.01 and abs(z.std().item() - 0.5) < 0.01  # std σ, not σ²
    z.mean().backward()
    assert torch.allclose(mu.grad, torch.full_like(mu, 1 / 200_000))
    # d z / d logvar = ½ σ ε, whose mean over ε is 0
    assert abs(logvar.grad.sum().item()) < 0.01


def test_gaussian_log_density_matches_torch():
    z, mu, logvar = torch.randn(7, 3), torch.randn(7, 3), torch.randn(7, 3)
    ref = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_density(z, mu, logvar), ref, atol=1e-5)


def test_bernoulli_log_likelihood_matches_torch_and_is_stable():
    logits, x = torch.randn(4, 1, 28, 28), torch.randint(0, 2, (4, 1, 28, 28)).float()
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), ref, atol=1e-3)
    big = torch.full((1, 3), 200.0)
    assert torch.isfinite(bernoulli_log_likelihood(big, torch.zeros(1, 3))).all()
    assert bernoulli_log_likelihood(big, torch.ones(1, 3)).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "enc,dec", [(MLPEncoder(784, (64,), 5), MLPDecoder(5, (64,))), (ConvEncoder(5, 8), ConvDecoder(5, 8))]
)
def test_encoders_and_decoders_shapes(enc, dec):
    x = torch.rand(3, 1, 28, 28)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (3, 5)
    assert dec(mu).shape == (3, 1, 28, 28)
    model = VAE(enc, dec, 5)
    logits, mu2, logvar2, z = model(x)
    assert logits.shape == x.shape and z.shape == (3, 5)
    assert model.sample(4).shape == (4, 1, 28, 28)


def test_elbo_terms_are_consistent():
    torch.manual_seed(0)
    model = VAE(MLPEncoder(784, (32,), 4), MLPDecoder(4, (32,)), 4)
    x = torch.randint(0, 2, (5, 1, 28, 28)).float()
    terms = elbo_terms(model, x, torch.Generator().manual_seed(1))
    assert torch.allclose(terms["elbo"], terms["recon"] - terms["kl"])
    mu, logvar = model.encoder(x)
    assert torch.allclose(terms["kl"], kl_gaussian(mu, logvar))
    assert (terms["recon"] <= 0).all() and (terms["kl"] >= 0).all()


def test_importance_sampling_on_a_model_with_a_known_likelihood():
    """A decoder that ignores z has p(x|z) = p(x): every importance weight then equals p(x)·p(z)/q(z)
    and the estimate with many samples converges to the exact log p(x)."""
    torch.manual_seed(0)

    class ConstantDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = torch.nn.Parameter(torch.randn(1, 1, 28, 28))

        def forward(self, z):
            return self.logits.expand(len(z), -1, -1, -1)

    model = VAE(MLPEncoder(784, (16,), 3), ConstantDecoder(), 3)
    x = torch.randint(0, 2, (4, 1, 28, 28)).float()
    exact = bernoulli_log_likelihood(model.decoder(torch.zeros(4, 3)), x)
    gen = torch.Generator().manual_seed(0)
    estimate = importance_log_likelihood(model, x, k=3000, generator=gen)
    assert torch.allclose(estimate, exact, atol=0.05)
    elbo = torch.stack([elbo_terms(model, x, gen)["elbo"] for _ in range(200)]).mean(0)
    assert (elbo < exact).all()  # the gap is KL(q ‖ p(z|x)) = KL(q ‖ p(z)) > 0 here
    with pytest.raises(ValueError):
        importance_log_likelihood(model, x, k=0)


@pytest.fixture(scope="module")
def mnist_small():
    return binarize(load_mnist("train", download=False).images[:2000], seed=0)


def test_train_vae_improves_the_elbo_and_is_deterministic(mnist_small):
    def run():
        seed_everything(3)
        model = mnist_vae(latent_dim=8, hidden=(128,))
        return model, train_vae(model, mnist_small, steps=150, batch_size=50, seed=3)

    model, h = run()
    assert set(h) == {"step", "loss", "recon", "kl"} and len(h["loss"]) == 150
    assert sum(h["loss"][-20:]) / 20 < sum(h["loss"][:20]) / 20 - 50
    _, h2 = run()
    assert h2["loss"] == h["loss"]
    with pytest.raises(ValueError):
        train_vae(model, mnist_small, steps=-1)


def test_train_autoencoder_reduces_reconstruction_error(mnist_small):
    torch.manual_seed(0)
    ae = Autoencoder(MLPEncoder(784, (64,), 2), MLPDecoder(2, (64,)), 2)
    h = train_autoencoder(ae, mnist_small, steps=150, batch_size=50, seed=0)
    assert h["loss"][-1] < h["loss"][0]
    assert ae.encode(mnist_small[:3]).shape == (3, 2)
    assert ae.decode(torch.zeros(2, 2)).shape == (2, 1, 28, 28)
