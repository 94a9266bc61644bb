import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from gencourse.data import load_mnist
from gencourse.nets import MNISTClassifier, accuracy, mlp, train_classifier
from gencourse.plotting import latent_manifold, make_grid, plot_history, show_images

matplotlib.use("Agg")


def test_mlp_layers():
    net = mlp([3, 8, 8, 2], activation=nn.Tanh)
    linear = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(3, 8), (8, 8), (8, 2)]
    assert sum(isinstance(m, nn.Tanh) for m in net) == 2
    assert net(torch.zeros(4, 3)).shape == (4, 2)
    assert isinstance(mlp([2, 1], out_activation=nn.Sigmoid())[-1], nn.Sigmoid)
    with pytest.raises(ValueError):
        mlp([3])


def test_classifier_pools_before_its_relu_with_the_same_function_and_gradients():
    """ReLU after the max-pool = the textbook conv → ReLU → pool order, values and gradients."""
    torch.manual_seed(0)
    net = MNISTClassifier()
    b = net.body
    assert isinstance(b[1], nn.MaxPool2d) and isinstance(b[2], nn.ReLU)
    textbook = nn.Sequential(b[0], b[2], b[1], b[3], b[5], b[4], *b[6:])
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)).requires_grad_()
    ours, ref = net.head(net.body(x)), net.head(textbook(x))
    assert torch.equal(ours, ref)
    g_ours = torch.autograd.grad(ours.square().sum(), [x, *net.parameters()])
    g_ref = torch.autograd.grad(ref.square().sum(), [x, *net.parameters()])
    for a, c in zip(g_ours, g_ref, strict=True):
        assert torch.equal(a, c)


def test_classifier_learns_mnist_quickly():
    train, test = load_mnist("train", download=False), load_mnist("test", download=False)
    model = MNISTClassifier()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert model.features(torch.zeros(2, 1, 28, 28)).shape == (2, 128)
    history = train_classifier(model, train.images, train.labels, steps=150, batch_size=64, seed=0)
    assert len(history["accuracy"]) == 150
    acc = accuracy(model, test.images, test.labels)
    assert acc > 0.85  # chance is 0.1
    with pytest.raises(ValueError):
        train_classifier(model, train.images, train.labels[:5], steps=1)


def test_make_grid_places_images():
    imgs = torch.zeros(5, 1, 4, 4)
    imgs[3] = 1.0
    grid = make_grid(imgs, nrow=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1)
    assert grid[6:10, 1:5].min() == 1.0  # image 3 is row 1, column 0
    assert grid[1:5, 1:5].max() == 0.0
    rgb = make_grid(np.zeros((2, 3, 4, 4)), nrow=2)
    assert rgb.shape == (6, 11, 3)
    with pytest.raises(ValueError):
        make_grid(torch.zeros(2, 2, 4, 4))


def test_plots_draw():
    ax = show_images(torch.rand(6, 1, 8, 8), nrow=3, title="t")
    assert ax.get_title() == "t"
    ax = plot_history({"step": [0, 1, 2, 3], "loss": [4.0, 3.0, 2.0, 1.0]}, ["loss"], smooth=2)
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 3


def test_latent_manifold_orders_the_grid():
    out = latent_manifold(lambda z: z, n=3, span=1.0)
    assert out.tolist()[0] == [-1.0, 1.0]  # top-left: z1 = −span, z2 = +span
    assert out.tolist()[2] == [1.0, 1.0] and out.tolist()[8] == [1.0, -1.0]
