# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: 04_adversarial
# init_cell: false
# export_cell: false
# check_all_cell: false
# tests:
#   files: false
# generate: true

# %% [markdown]
# # Assignment 4: adversarial examples
#
# You implement the gradient of the loss with respect to the input, the fast gradient sign
# method (FGSM, Goodfellow, Shlens and Szegedy, 2015) and an iterative targeted attack, and
# measure how the accuracy of an MNIST classifier falls with the size $\varepsilon$ of the
# perturbation (lecture 7).
#
# **How it is graded.** `grader.check("q1")` runs a question's public tests here. After the
# deadline the grader runs your notebook top to bottom in a separate process and calls your
# functions on small networks and inputs of its own, including hidden random ones, comparing the
# results with its references. Keep the inputs' dtype (the grader uses float64), do not modify
# inputs in place, and write your own code: `gencourse.adversarial`, which holds the answers,
# cannot be imported while grading. The notebook must run in about a minute on a CPU at
# `GENCOURSE_BUDGET=ci`. Question 5 is a written answer, graded by hand.

# %%
# Colab: install the course package and fetch this assignment's public tests (does nothing elsewhere).
import subprocess
import sys

if "google.colab" in sys.modules:
    PACKAGE = "gencourse[grading] @ git+https://github.com/gencourse/gencourse@v0.1.0"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", PACKAGE], capture_output=True, text=True
    )
    if pip.returncode != 0:  # show pip's own message, not only its exit status
        raise RuntimeError(f"pip could not install {PACKAGE}:\n{pip.stdout[-2000:]}{pip.stderr[-3000:]}")
    from google.colab import output

    output.enable_custom_widget_manager()  # ipywidgets 8 (sliders, progress bars) on Colab
    from gencourse.grading.assign import fetch_for_colab

    fetch_for_colab("04_adversarial")

# %%
# Otter: grader.check("q1") runs the public tests of question q1.
import otter

grader = otter.Notebook("04_adversarial.ipynb")

# %%
import os

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn import functional as F

from gencourse.data import load_mnist
from gencourse.nets import mlp, train_classifier
from gencourse.runtime import budget, budget_level, seed_everything

# An assignment trains on the CPU, also on a Colab GPU runtime, so its budget does not follow the
# runtime: it is `cpu` unless GENCOURSE_BUDGET names another level.
os.environ.setdefault("GENCOURSE_BUDGET", "cpu")

print(f"budget level: {budget_level()}")

# %% [markdown]
# ## Part 1: the gradient of the loss with respect to the input
#
# A classifier $f$ maps an image $x \in [0, 1]^{C \times H \times W}$ to logits
# $f(x) \in \mathbb R^K$; its loss on a label $y$ is the cross-entropy
# $\ell(x, y) = -\log \operatorname{softmax}(f(x))_y$. Attacks move $x$ along
# $\nabla_x \ell(x, y)$, which autograd computes like any other gradient.

# %% [markdown]
# The public tests use this two-class classifier of $1 \times 2 \times 2$ images, whose logits
# are the first two pixels (its gradients can be worked out by hand).

# %%
linear = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
with torch.no_grad():
    linear[1].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2

# %% [markdown]
# **Question 1.** Implement `input_gradient(model, x, y)`: `x` is a batch $(N, C, H, W)$, `y`
# holds $N$ integer labels; return $\nabla_x \sum_n \ell(x_n, y_n)$ (the gradient of the *summed*
# loss, so that each image gets the gradient of its own loss), of the shape of `x`, without
# changing `x` or the model's parameters' gradients.

# %% [raw]
# # BEGIN SOLUTION


# %%
def input_gradient(model, x, y):
    """∇ₓ Σₙ ℓ(xₙ, yₙ) for the cross-entropy ℓ of the model's logits."""
    # BEGIN SOLUTION
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
g = input_gradient(linear, torch.zeros(1, 1, 2, 2), torch.tensor([0]))
# at x = 0 both logits are 0: the softmax is (½, ½) and ∇ℓ = Wᵀ(softmax − e_y) = (−½, ½, 0, 0)
assert torch.allclose(g, torch.tensor([[[[-0.5, 0.5], [0.0, 0.0]]]]))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 2: FGSM
#
# The loss grows fastest, among perturbations with $\lVert \delta \rVert_\infty \le \varepsilon$,
# to first order, along $\delta = \varepsilon \operatorname{sign} \nabla_x \ell(x, y)$:
#
# $$
# x' = \operatorname{clip}_{[0, 1]}\big(x + \varepsilon \operatorname{sign} \nabla_x \ell(x, y)\big).
# $$

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2

# %% [markdown]
# **Question 2.** Implement `fgsm(model, x, y, eps)` as above (where a gradient entry is exactly
# zero, that pixel does not move).

# %% [raw]
# # BEGIN SOLUTION


# %%
def fgsm(model, x, y, eps):
    """x' = clip(x + ε sign ∇ₓℓ(x, y), 0, 1)."""
    # BEGIN SOLUTION
    return (x + eps * input_gradient(model, x, y).sign()).clamp(0, 1).detach()
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x_adv = fgsm(linear, torch.full((1, 1, 2, 2), 0.5), torch.tensor([0]), 0.1)
assert torch.allclose(x_adv, torch.tensor([[[[0.4, 0.6], [0.5, 0.5]]]]))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 3: a targeted attack
#
# To make the classifier answer a chosen class $t$, descend the loss of $t$ instead, in small
# signed steps of size $\alpha$, projecting back after each step onto the allowed set
# $\{x' : \lVert x' - x \rVert_\infty \le \varepsilon,\ 0 \le x' \le 1\}$ (a box, so the projection
# clips each pixel):
#
# $$
# x'_{0} = x, \qquad
# x'_{i+1} = \Pi\big(x'_i - \alpha \operatorname{sign} \nabla_x \ell(x'_i, t)\big).
# $$

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 2

# %% [markdown]
# **Question 3.** Implement `targeted_attack(model, x, target, eps, steps, step_size)`, the
# iteration above with $\alpha$ = `step_size`, returning $x'_{\text{steps}}$.

# %% [raw]
# # BEGIN SOLUTION


# %%
def targeted_attack(model, x, target, eps, steps, step_size):
    """`steps` signed steps of size α down the loss of the target, each projected onto the box."""
    # BEGIN SOLUTION
    x = x.detach()
    x_adv = x.clone()
    for _ in range(steps):
        x_adv = x_adv - step_size * input_gradient(model, x_adv, target).sign()
        x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x_adv = targeted_attack(
    linear, torch.full((1, 1, 2, 2), 0.5), torch.tensor([1]), 0.1, steps=5, step_size=0.05
)
assert torch.allclose(x_adv, torch.tensor([[[[0.4, 0.6], [0.5, 0.5]]]]))  # two steps reach the box's corner

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 1

# %% [markdown]
# **Question 4.** Implement `accuracy_under_fgsm(model, x, y, eps)`: the fraction (a Python
# `float`) of the images whose FGSM perturbation of size `eps` is still classified as its label.

# %% [raw]
# # BEGIN SOLUTION


# %%
def accuracy_under_fgsm(model, x, y, eps):
    """Accuracy of the model on fgsm(model, x, y, eps)."""
    # BEGIN SOLUTION
    x_adv = fgsm(model, x, y, eps)
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    return float((pred == y).double().mean())
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
acc = accuracy_under_fgsm(linear, torch.full((2, 1, 2, 2), 0.5), torch.tensor([0, 1]), 0.0)
assert type(acc) is float and 0.0 <= acc <= 1.0

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 4: accuracy against ε on MNIST
#
# A small classifier (784-256-10) is trained here and attacked with your FGSM at several
# $\varepsilon$; the cell prints and plots the test accuracy, and runs your targeted attack
# towards class 0 on the digits that are not zeros.

# %%
seed_everything(0)
train, test = load_mnist("train"), load_mnist("test")
model = nn.Sequential(nn.Flatten(), mlp([784, 256, 10]))
train_classifier(model, train.images, train.labels, steps=budget(ci=150, cpu=3_000, gpu=10_000))
model.requires_grad_(False)
x_test, y_test = test.images[:500], test.labels[:500]
EPS = (0.0, 0.02, 0.05, 0.1, 0.2)
accuracies = [accuracy_under_fgsm(model, x_test, y_test, eps) for eps in EPS]
for eps, acc in zip(EPS, accuracies, strict=True):
    print(f"eps = {eps:.2f}: accuracy {acc:.3f}")
not_zero = y_test != 0
x_target = targeted_attack(
    model, x_test[not_zero], torch.zeros(int(not_zero.sum()), dtype=torch.long), 0.2, 20, 0.02
)
with torch.no_grad():
    success = (model(x_target).argmax(1) == 0).float().mean().item()
print(f"targeted attack towards 0 at eps = 0.2: {100 * success:.1f}% of the other digits now read as 0")

# %%
plt.plot(EPS, accuracies, marker="o")
plt.xlabel("ε (L∞ size of the FGSM perturbation)")
plt.ylabel("test accuracy")
plt.ylim(0, 1)
plt.show()

# %% [raw]
# # BEGIN QUESTION
# name: q5
# manual: true
# points: 1

# %% [markdown]
# **Question 5 (written).** Run the cell above at the `cpu` budget. A perturbation of
# $\varepsilon = 0.1$ changes each pixel by at most a tenth of the grey range, yet the accuracy
# falls far below its clean value. Explain why with the linear approximation
# $f(x + \delta) \approx f(x) + J\delta$ and the size of $\varepsilon \lVert w \rVert_1$ for a
# weight vector $w$ in 784 dimensions. (A few sentences.)

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# To first order a logit changes by $w^\top \delta$, and over the box
# $\lVert\delta\rVert_\infty \le \varepsilon$ the largest change is $\varepsilon \lVert w \rVert_1$,
# reached at $\delta = \varepsilon \operatorname{sign} w$. In 784 dimensions
# $\lVert w \rVert_1$ is of order $784$ times the typical $|w_i|$, so the many tiny per-pixel changes
# add up to a change of the logits larger than the margins between classes. FGSM picks exactly this
# $\delta$ for the loss's gradient, which is why accuracy collapses at an $\varepsilon$ that is
# nearly invisible.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
