"""The strict logical device (gencourse.strict_device): what CUDA/MPS refuse raises, what they
allow passes, and the arithmetic is the CPU's, bit for bit."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gencourse import runtime, strict_device
from gencourse.inverse import lasso
from gencourse.strict_device import StrictDeviceError, StrictDeviceTypeError
from gencourse.strict_device import strict_device as strict


@pytest.fixture
def cuda():
    with strict("cuda") as device:
        yield device


@pytest.fixture
def mps():
    with strict("mps") as device:
        yield device


# --------------------------------------------------------------------------------------------
# refused mixes


MIXES = {
    "add": lambda d, c: d + c,
    "mul": lambda d, c: c * d,
    "matmul": lambda d, c: d @ c.T,
    "cat": lambda d, c: torch.cat([d, c]),
    "stack": lambda d, c: torch.stack([d, c]),
    "where": lambda d, c: torch.where(d > 0, d, c),
    "in-place on the device": lambda d, c: d.add_(c),
    "in-place on the CPU": lambda d, c: c.mul_(d),
    "loss": lambda d, c: F.mse_loss(d, c),
    "index_select with a CPU index": lambda d, c: d.index_select(0, torch.tensor([0, 1])),
    "CPU tensor indexed by a device index": lambda d, c: c[torch.tensor([0, 1]).to(d.device)],
    "advanced assignment of a CPU tensor": lambda d, c: d.__setitem__(torch.tensor([0, 1]), c[:2]),
}


@pytest.mark.parametrize("name", MIXES)
def test_mixing_the_device_with_cpu_tensors_raises(cuda, name):
    d, c = torch.randn(3, 4, device=cuda), torch.randn(3, 4)
    with pytest.raises(StrictDeviceError, match="device"):
        MIXES[name](d, c)


def test_numpy_of_a_device_tensor_raises_and_names_the_line(cuda):
    x = torch.ones(3, device=cuda)
    with pytest.raises(
        StrictDeviceTypeError, match="can't convert cuda:0 device type tensor to numpy"
    ) as info:
        x.numpy()  # the line the message names
    assert "test_strict_device.py" in str(info.value) and "x.numpy()" in str(info.value)
    with pytest.raises(StrictDeviceTypeError):
        np.asarray(x)


def test_the_message_names_the_callers_line_when_the_mix_is_inside_the_package(cuda):
    a, y = torch.randn(5, 16).to(cuda), torch.randn(2, 5).to(cuda)
    with pytest.raises(StrictDeviceError) as info:
        lasso(a, y, 0.1) - torch.zeros(2, 16)
    assert "test_strict_device.py" in str(info.value) and "lasso(a, y, 0.1)" in str(info.value)


# --------------------------------------------------------------------------------------------
# the allow-list


def test_what_cuda_allows_passes(cuda):
    c = torch.arange(12.0).view(3, 4)
    d = c.to(cuda)
    assert d.device == torch.device("cuda", 0) and d.is_cuda and d.device != torch.device("cpu")
    assert torch.equal((d * torch.tensor(2.0)).cpu(), c * 2)  # a 0-dim CPU tensor is a scalar
    assert torch.equal(d[torch.tensor([2, 0])].cpu(), c[[2, 0]])  # CPU index tensors
    assert torch.equal(d[c[:, 0] > 3].cpu(), c[c[:, 0] > 3])  # CPU boolean masks
    e = d.clone()
    e[torch.tensor([0, 1])] = torch.tensor(-1.0)  # a 0-dim CPU value
    e[2:] = torch.zeros(1, 4)  # a copy into a slice
    e[c > 10] = 5.0
    f = c.clone()
    f[1:] = d[1:]  # a copy from the device into a CPU slice
    assert torch.equal(f, c)
    assert e.cpu()[:2].eq(-1).all() and e.cpu()[2, :3].eq(0).all() and e.cpu()[2, 3] == 5
    assert np.array_equal(d.cpu().numpy(), c.numpy()) and d.tolist() == c.tolist()
    assert d.sum().item() == 66.0 and float(d[1, 1]) == 5.0 and f"{d.mean():.2f}" == "5.50"
    assert d.cuda() is d and c.cuda().device == d.device and d.to("cpu").device.type == "cpu"
    assert np.array_equal(d.numpy(force=True), c.numpy())


FACTORIES = {
    "zeros": lambda dev: torch.zeros(2, 3, device=dev),
    "ones": lambda dev: torch.ones(2, device=dev),
    "empty": lambda dev: torch.empty(2, device=dev),
    "full": lambda dev: torch.full((2,), 3.0, device=dev),
    "eye": lambda dev: torch.eye(3, device=dev),
    "rand": lambda dev: torch.rand(2, device=dev),
    "randn": lambda dev: torch.randn(2, device=dev),
    "randint": lambda dev: torch.randint(5, (3,), device=dev),
    "randperm": lambda dev: torch.randperm(5, device=dev),
    "arange": lambda dev: torch.arange(5, device=dev),
    "linspace": lambda dev: torch.linspace(0, 1, 5, device=dev),
    "tensor": lambda dev: torch.tensor([1.0, 2.0], device=dev),
    "as_tensor": lambda dev: torch.as_tensor(np.ones(3), dtype=torch.float32, device=dev),
    "zeros_like": lambda dev: torch.zeros_like(torch.ones(2), device=dev),
    "randn_like of a device tensor": lambda dev: torch.randn_like(torch.ones(2, device=dev)),
    "new_zeros": lambda dev: torch.ones(2, device=dev).new_zeros(3),
    "Linear(device=)": lambda dev: nn.Linear(2, 3, device=dev).weight,
}


@pytest.mark.parametrize("name", FACTORIES)
def test_factories_honour_device(cuda, name):
    out = FACTORIES[name](cuda)
    assert out.device == torch.device("cuda", 0)
    with pytest.raises(StrictDeviceError):
        out + torch.ones(out.shape)


def test_factories_without_device_stay_on_the_cpu(cuda):
    assert torch.zeros(2).device.type == "cpu" and not isinstance(torch.zeros(2), strict_device.DeviceTensor)


def test_module_to_moves_parameters_and_buffers_in_place(cuda):
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    weight = net[0].weight
    assert net.to(cuda) is net
    assert net[0].weight is weight and isinstance(weight, nn.Parameter)  # as on CUDA: same Parameter
    assert all(t.device.type == "cuda" for t in [*net.parameters(), *net.buffers()])
    net(torch.randn(5, 3, device=cuda))
    with pytest.raises(StrictDeviceError):
        net(torch.randn(5, 3))  # a CPU batch into a module on the device
    clone = copy.deepcopy(net)
    assert clone[0].weight.device.type == "cuda" and torch.equal(clone[0].weight.cpu(), weight.cpu())
    assert net.cpu()[0].weight.device.type == "cpu"


@pytest.mark.parametrize(
    "move",
    [
        lambda net, d: net.to(d),
        lambda net, d: net.to(device=d),
        lambda net, d: net.to(d, torch.float32),
        lambda net, d: net.to(device=d, dtype=torch.float32),
    ],
    ids=["positional", "device=", "positional dtype", "device= dtype="],
)
def test_module_to_honours_every_way_of_naming_the_device(cuda, move):
    """Module.to parses its arguments with torch._C._nn._parse_to; the keyword form once stayed
    on the CPU (the mode rewrote the parser's device= as if it were a factory's)."""
    net = move(nn.Linear(3, 4), cuda)
    assert all(p.device.type == "cuda" for p in net.parameters())
    assert net.to(device="cpu").weight.device.type == "cpu"


def _train(device: torch.device, optimiser: str) -> list[float]:
    """A small MLP with batch norm, 8 Adam steps on random mini-batches: the loss history."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.BatchNorm1d(32), nn.Linear(32, 1)).to(device)
    x, y = torch.randn(64, 6, generator=gen), torch.randn(64, 1, generator=gen)
    opt = (
        runtime.adam(net.parameters(), lr=1e-2)
        if optimiser == "course"
        else torch.optim.Adam(net.parameters())
    )
    history = []
    for _ in range(8):
        idx = torch.randint(64, (16,), generator=gen)
        loss = F.mse_loss(net(x[idx].to(device)), y[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


@pytest.mark.parametrize("optimiser", ["course", "torch"])
def test_training_gives_the_cpu_loss_history_to_the_last_bit(optimiser):
    expected = _train(torch.device("cpu"), optimiser)
    with strict("cuda") as device:
        assert _train(device, optimiser) == expected


def test_gradients_flow_across_moves(cuda):
    x = torch.randn(4, requires_grad=True)
    (x.to(cuda) ** 2).sum().backward()
    assert x.grad is not None and torch.equal(x.grad, 2 * x.detach())
    w = torch.randn(4, device=cuda, requires_grad=True)
    (w.cpu() * 3).sum().backward()
    assert w.grad.device.type == "cuda" and torch.equal(w.grad.cpu(), torch.full((4,), 3.0))


# --------------------------------------------------------------------------------------------
# generators


def test_a_device_generator_draws_on_the_device_and_a_cpu_generator_raises(cuda):
    g = torch.Generator(device=cuda).manual_seed(3)
    assert g.device.type == "cuda" and isinstance(torch.default_generator, torch.Generator)
    x = torch.randn(5, device=cuda, generator=g)
    assert torch.equal(x.cpu(), torch.randn(5, generator=torch.Generator().manual_seed(3)))
    # as CUDA: "Expected a 'cuda' device type for generator but found 'cpu'"
    with pytest.raises(StrictDeviceError, match="Expected a 'cuda' device type for generator"):
        torch.randn(5, device=cuda, generator=torch.Generator().manual_seed(3))
    with pytest.raises(StrictDeviceError, match="Expected a 'cuda' device type for generator"):
        torch.bernoulli(torch.full((3,), 0.5, device=cuda), generator=torch.Generator())
    with pytest.raises(StrictDeviceError, match="Expected a 'cpu' device type for generator"):
        torch.randn(5, generator=g)  # a device generator for a CPU draw
    torch.randn(5, generator=torch.Generator()).to(cuda)  # draw on the CPU, then move: allowed


# --------------------------------------------------------------------------------------------
# MPS: no float64


def test_mps_refuses_float64_on_the_device_only(mps):
    x = torch.ones(3, device=mps)
    assert x.device == torch.device("mps", 0)
    for cast in (
        lambda: x.double(),
        lambda: x.to(torch.float64),
        lambda: torch.zeros(2, dtype=torch.float64, device=mps),
    ):
        with pytest.raises(StrictDeviceTypeError, match="MPS framework doesn't support float64"):
            cast()
    with pytest.raises(StrictDeviceTypeError):
        torch.ones(2, dtype=torch.float64).to(mps)
    assert x.cpu().double().dtype == torch.float64 and x.to("cpu", torch.float64).dtype == torch.float64
    with pytest.raises(StrictDeviceTypeError):  # lecture 7's `copy.deepcopy(clf).double()`
        copy.deepcopy(nn.Linear(2, 2).to(mps)).double()
    with pytest.raises((AssertionError, RuntimeError)):  # no CUDA on an Apple laptop
        x.cpu().cuda()


# --------------------------------------------------------------------------------------------
# the planted defects of issue 23 (same code shape as the lectures' lines)


def _lecture1_walk(device: torch.device, fixed: bool) -> torch.Tensor:
    """Lecture 1: z + t·v for t in linspace(-1.5, 1.5, 7), v on the device."""
    v = torch.randn(4, device=device)
    mu = torch.randn(6, 4, device=device)
    steps_v = torch.linspace(-1.5, 1.5, 7, device=device) if fixed else torch.linspace(-1.5, 1.5, 7)
    return torch.cat([(mu[i] + steps_v[:, None] * v).cpu() for i in range(6)])


def _lecture5_lasso_error(device: torch.device, fixed: bool) -> torch.Tensor:
    """Lecture 5: the Lasso's reconstruction (returned on y's device) against x on the CPU."""
    a = torch.randn(5, 16, generator=torch.Generator().manual_seed(0)).to(device)
    x_in_range = torch.rand(2, 16, generator=torch.Generator().manual_seed(1)).to(device)
    y = x_in_range @ a.T
    x_hat = lasso(a, y, 0.1, clip=(0, 1))
    return ((x_hat.cpu() if fixed else x_hat) - x_in_range.cpu()) ** 2


@pytest.mark.parametrize("defect", [_lecture1_walk, _lecture5_lasso_error], ids=["lecture 1", "lecture 5"])
def test_planted_defects_fail_strict_and_pass_when_fixed(defect):
    expected = defect(torch.device("cpu"), fixed=False)  # on the CPU the defect is invisible
    with strict("cuda") as device:
        with pytest.raises(StrictDeviceError, match="Expected all tensors to be on the same device"):
            defect(device, fixed=False)
        torch.manual_seed(0)
        got = defect(device, fixed=True)
    torch.manual_seed(0)
    assert torch.equal(got, defect(torch.device("cpu"), fixed=True)) and got.shape == expected.shape


def test_planted_float64_cast_fails_in_mps_mode_and_passes_when_fixed():
    def total(device: torch.device, fixed: bool) -> float:
        logp = torch.randn(512, generator=torch.Generator().manual_seed(0)).to(device)
        return (logp.cpu().double() if fixed else logp.double().cpu()).exp().sum().item()

    with strict("cuda") as device:
        assert total(device, fixed=False) == total(device, fixed=True)  # CUDA has float64
    with strict("mps") as device:
        with pytest.raises(StrictDeviceTypeError):
            total(device, fixed=False)
        assert total(device, fixed=True) == total(torch.device("cpu"), fixed=False)


# --------------------------------------------------------------------------------------------
# switching it on


def test_get_device_follows_the_environment(monkeypatch):
    monkeypatch.setenv(strict_device.ENV, "1")
    try:
        assert runtime.get_device() == torch.device("cuda") and strict_device.is_enabled()
        assert torch.zeros(1, device=runtime.get_device()).is_cuda
    finally:
        strict_device.disable()
    assert not strict_device.is_enabled() and torch.Generator is torch._C.Generator
    monkeypatch.setenv(strict_device.ENV, "mps")
    try:
        assert runtime.get_device() == torch.device("mps")
    finally:
        strict_device.disable()
    monkeypatch.setenv(strict_device.ENV, "0")
    assert runtime.get_device() == torch.device("cpu") or torch.cuda.is_available()
    monkeypatch.setenv(strict_device.ENV, "tpu")
    with pytest.raises(ValueError, match="GENCOURSE_STRICT_DEVICE"):
        runtime.get_device()


def _vmapped_batch_norm_nets(device: torch.device) -> torch.Tensor:
    """Lecture 6's stacked networks: torch.func.vmap over functional_call, with batch norm (whose
    batching rule makes its dummy weights in C++ from the input's options)."""
    from torch.func import functional_call, stack_module_state, vmap

    torch.manual_seed(0)
    nets = [
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).to(device)
        for _ in range(3)
    ]
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    x = torch.randn(3, 2, 1, 8, 8, generator=torch.Generator().manual_seed(1)).to(device)
    return vmap(lambda p, b, xi: functional_call(base, (p, b), (xi,)))(params, buffers, x)


def test_vmap_with_batch_norm_runs_on_the_device_as_on_the_cpu():
    expected = _vmapped_batch_norm_nets(torch.device("cpu"))
    with strict("cuda") as device:
        got = _vmapped_batch_norm_nets(device)
        assert got.device.type == "cuda"
        got = got.cpu()
    assert torch.equal(got, expected)


def test_backward_formulas_that_make_tensors_in_cpp_stay_on_the_device():
    """clamp's gradient is where(mask, grad, zeros({}, grad.options())), made in C++ (lecture 7's
    EOT attack through grid_sample)."""

    def grad_of(device: torch.device) -> torch.Tensor:
        x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)).to(device).requires_grad_()
        theta = torch.tensor([[[0.9, 0.1, 0.0], [0.0, 1.1, 0.05]]]).expand(2, 2, 3).to(device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        (F.grid_sample(x, grid, align_corners=False).clamp(0, 1) ** 2).sum().backward()
        return x.grad

    expected = grad_of(torch.device("cpu"))
    with strict("cuda") as device:
        got = grad_of(device)
        assert got.device.type == "cuda"
        got = got.cpu()
    assert torch.equal(got, expected)


def test_one_hot_and_other_cpp_factories_compute_their_values(cuda):
    """F.one_hot of a non-CPU tensor compares it with at::arange made in C++ from its options
    (lecture 10's conditional networks): the values must be the CPU's."""
    y = torch.tensor([1, 3, 0])
    assert torch.equal(F.one_hot(y.to(cuda), 5).cpu(), F.one_hot(y, 5))


def test_to_another_tensor_takes_its_device_and_dtype(cuda):
    z = torch.zeros(2, device=cuda)
    moved = torch.tensor([1, 2]).to(z)
    assert moved.device.type == "cuda" and moved.dtype == torch.float32
    back = torch.ones(2, device=cuda, dtype=torch.int64).to(torch.zeros(1, dtype=torch.float64))
    assert back.device.type == "cpu" and back.dtype == torch.float64


# --------------------------------------------------------------------------------------------
# `make test` runs the lecture notebooks strict: its configuration, and a planted notebook run
# under exactly that configuration


def _makefile_strict_env(curdir: str) -> dict[str, str]:
    """The variables of the Makefile's STRICT_ENV, with $(CURDIR) replaced by ``curdir``."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    body = re.search(r"^STRICT_ENV := ((?:.*\\\n)*.*)$", text, re.M).group(1).replace("\\\n", " ")
    return dict(item.split("=", 1) for item in body.replace("$(CURDIR)", curdir).split())


def _make_recipe(target: str) -> str:
    """The recipe of a Makefile target (its tab-indented lines, continuations joined)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    block = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    return block.replace("\\\n", " ")


def test_make_test_runs_the_lecture_notebooks_strict_with_float64_refused():
    env = _makefile_strict_env("/x")
    assert env["GENCOURSE_STRICT_DEVICE"] == "mps" and env["GENCOURSE_BUDGET"] == "ci"
    assert env["GENCOURSE_CACHE"] == "/x/_build/model-cache-strict"  # its own model cache
    recipe = _make_recipe("test")
    runs = [line for line in recipe.splitlines() if "pytest" in line]
    assert len(runs) == 1, runs  # one run: the package tests plain, the notebooks strict
    assert "$(STRICT_ENV)" in runs[0] and "--nbval-lax tests lectures" in runs[0]
    # the strict run writes the results that the scoreboard check reads
    assert "GENCOURSE_RESULTS=$(CURDIR)/_build/results-ci" in runs[0]
    assert "--results _build/results-ci" in recipe and "--check" in recipe


PLANTED_CELLS = [
    "import torch\nfrom gencourse.runtime import get_device\nDEVICE = get_device()\nv = torch.randn(4, device=DEVICE)",
    # issue 23's lecture 1 line: CPU steps times a device vector
    "walk = torch.linspace(-1.5, 1.5, 7)[:, None] * v",
    # float64 on the device, as lecture 7's `copy.deepcopy(clf).double()` was
    "total = v.double().exp().sum().item()",
    # the fixed lines
    "walk = torch.linspace(-1.5, 1.5, 7, device=DEVICE)[:, None] * v\n"
    "total = v.cpu().double().exp().sum().item()\nassert DEVICE.type == 'mps'",
]


def test_a_planted_notebook_fails_under_make_tests_strict_run(tmp_path):
    """A notebook with the two kinds of defect, run by nbval with the Makefile's STRICT_ENV: the
    mixed-device cell and the float64 cell fail (naming the line), the fixed cell passes."""
    import os
    import subprocess
    import sys

    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in PLANTED_CELLS]
    nbformat.write(nb, tmp_path / "planted.ipynb")
    env = {**os.environ, **_makefile_strict_env(str(tmp_path))}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "planted.ipynb",
            "-rA",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "2 failed, 2 passed" in text, text[-3000:]
    assert "Expected all tensors to be on the same device" in text
    assert "MPS framework doesn't support float64" in text
    failed = {
        line.split(" - ")[0].removeprefix("FAILED ")
        for line in text.splitlines()
        if line.startswith("FAILED")
    }
    assert failed == {"planted.ipynb::Cell 1", "planted.ipynb::Cell 2"}, failed
