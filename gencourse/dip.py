"""The deep image prior (Ulyanov, Vedaldi & Lempitsky, 2018) and CS-DIP (Van Veen et al., 2018).

An *untrained* convolutional generator G_w with a fixed random input z is fitted to one
corrupted observation x₀ = f(x*) + noise:

    ŵ = argmin_w  ℓ(f(G_w(z)), x₀) (+ β TV(G_w(z))),    x̂ = G_ŵ(z).

The minimisation is over the weights w; z is drawn once and never changes. f is the forward
operator: the identity (denoising), a mask (inpainting), or a measurement matrix A (compressed
sensing, CS-DIP). The network fits the image's structure long before it fits the noise, so the
estimate is read off early: at a fixed step, or when the loss reaches the noise level
(the discrepancy principle: stop once ℓ ≤ σ², when the noise variance σ² is known).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gencourse.restoration import psnr
from gencourse.train import fit, require_int


def _conv_block(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, members: int = 1
) -> nn.Sequential:
    """conv (reflection padding) → batch norm → LeakyReLU(0.2); for ``members`` = S, S such
    blocks side by side (channels member-major, one grouped convolution, statistics per member)."""
    return nn.Sequential(
        nn.Conv2d(
            members * in_channels, members * out_channels, kernel, stride, padding=kernel // 2,
            padding_mode="reflect", groups=members,
        ),
        nn.BatchNorm2d(members * out_channels),
        nn.LeakyReLU(0.2),
    )  # fmt: skip


class SkipNet(nn.Module):
    """The deep image prior's encoder-decoder with skip connections ("skip" in the authors' code).

    Level i of the encoder halves the size: x_{i+1} = block(block_stride2(x_i)), with
    ``channels[i]`` channels; a 1×1 skip branch keeps ``skip_channels`` channels of x_i. The
    decoder goes back up: h ← block(block(concat(upsample(h), skip_i))), bilinear ×2
    upsampling; a final 1×1 convolution and a sigmoid give an image in [0, 1]. Blocks are
    convolution, batch norm, LeakyReLU(0.2). H and W must be multiples of 2^len(channels).

    With ``members`` = S the module holds S independent networks side by side (the course's
    stacked layers: every convolution a grouped convolution with S groups, every batch norm with
    statistics per member and channel) and maps z (S, N, C, H, W) to (S, N, C', H, W), member s
    on z[s]; :meth:`stack` builds it from S networks and :meth:`unstack` writes it back.
    """

    def __init__(
        self,
        in_channels: int = 32,
        out_channels: int = 1,
        channels: Sequence[int] = (32, 32, 32, 32),
        skip_channels: int = 4,
        members: int = 1,
    ) -> None:
        super().__init__()
        if not channels or min(channels) < 1 or skip_channels < 0:
            raise ValueError(f"need at least one level of positive width, got {list(channels)}")
        require_int("members", members)
        self.config = (in_channels, out_channels, tuple(channels), skip_channels)
        self.members = s = members
        widths = [in_channels, *channels]
        self.levels = len(channels)
        self.down = nn.ModuleList(
            nn.Sequential(
                _conv_block(widths[i], widths[i + 1], 3, 2, s),
                _conv_block(widths[i + 1], widths[i + 1], 3, 1, s),
            )
            for i in range(self.levels)
        )
        self.skip = nn.ModuleList(
            _conv_block(widths[i], skip_channels, 1, 1, s) if skip_channels else nn.Identity()
            for i in range(self.levels)
        )
        self.skip_channels = skip_channels
        self.up = nn.ModuleList()
        for i in range(self.levels):
            deeper = channels[i + 1] if i + 1 < self.levels else channels[i]
            self.up.append(
                nn.Sequential(
                    nn.BatchNorm2d(s * (deeper + skip_channels)),
                    _conv_block(deeper + skip_channels, channels[i], 3, 1, s),
                    _conv_block(channels[i], channels[i], 1, 1, s),
                )
            )
        self.out = nn.Conv2d(s * channels[0], s * out_channels, 1, groups=s)
        # channels-last weights (oneDNN's preferred layout): a CPU fit step on a 96×96 image
        # takes about 15% less time; the function is the same
        self.to(memory_format=torch.channels_last)

    @classmethod
    def stack(cls, nets: Sequence[SkipNet]) -> SkipNet:
        """One SkipNet with ``members`` = S holding the S networks ``nets`` (same configuration):
        each weight, bias and batch-norm statistic is the concatenation of the members' along
        the channel axis."""
        if not nets or any(type(n) is not cls or n.members != 1 or n.config != nets[0].config for n in nets):
            raise ValueError(
                "stacking needs SkipNets of one architecture (same configuration, one member each)"
            )
        return _stacked(lambda: cls(*nets[0].config, members=len(nets)), nets)

    def unstack(self, nets: Sequence[SkipNet | None]) -> None:
        """Copy member s's weights and statistics into ``nets[s]``, for every s (None: skip s)."""
        _unstack(self, nets)

    def _cat(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """[h, skip] along the channels of each member."""
        if self.members == 1:
            return torch.cat([h, skip], dim=1)
        n, _, height, width = h.shape
        parts = [t.reshape(n, self.members, -1, height, width) for t in (h, skip)]
        return torch.cat(parts, dim=2).reshape(n, -1, height, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        size = 2**self.levels
        dims = 4 if self.members == 1 else 5
        if (
            z.dim() != dims
            or z.shape[-1] % size
            or z.shape[-2] % size
            or (dims == 5 and len(z) != self.members)
        ):
            shape = "(N, C, H, W)" if dims == 4 else f"({self.members}, N, C, H, W)"
            raise ValueError(f"expected inputs {shape} with H, W multiples of {size}, got {tuple(z.shape)}")
        if dims == 5:  # (S, N, C, H, W) → (N, S·C, H, W), channels member-major
            z = z.transpose(0, 1).reshape(z.shape[1], -1, *z.shape[-2:])
        xs, skips = [z], []
        for down, skip in zip(self.down, self.skip, strict=True):
            skips.append(skip(xs[-1]))
            xs.append(down(xs[-1]))
        h = xs[-1]
        for i in reversed(range(self.levels)):
            h = F.interpolate(h, size=xs[i].shape[-2:], mode="bilinear", align_corners=False)
            if self.skip_channels:
                h = self._cat(h, skips[i])
            h = self.up[i](h)
        out = torch.sigmoid(self.out(h))
        if dims == 5:
            out = out.reshape(out.shape[0], self.members, -1, *out.shape[-2:]).transpose(0, 1)
        return out


class PixelImage(nn.Module):
    """No prior at all: the output is a free image, the module's parameters (zeros at the start),
    whatever the input; fitted like a network, it gives the baseline "the pixels themselves".
    With ``members`` = S, S images side by side: z (S, N, ...) ↦ pixels (S, 1, C, H, W)."""

    def __init__(self, channels: int = 1, height: int = 28, width: int = 28, members: int = 1) -> None:
        super().__init__()
        require_int("members", members)
        self.config, self.members = (channels, height, width), members
        self.pixels = nn.Parameter(torch.zeros(members, channels, height, width))

    @classmethod
    def stack(cls, images: Sequence[PixelImage]) -> PixelImage:
        """One PixelImage with ``members`` = S holding the S images."""
        if not images or any(
            type(i) is not cls or i.members != 1 or i.config != images[0].config for i in images
        ):
            raise ValueError("stacking needs PixelImages of one shape, one member each")
        return _stacked(lambda: cls(*images[0].config, members=len(images)), images)

    def unstack(self, images: Sequence[PixelImage | None]) -> None:
        """Copy image s into ``images[s]``, for every s (None: skip s)."""
        _unstack(self, images)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.pixels if self.members == 1 else self.pixels[:, None]


def _stacked(make: Callable[[], nn.Module], members: Sequence[nn.Module]) -> nn.Module:
    """``make()`` (a module with ``members`` = S, its tensors member-major along their first
    axis) loaded with the S modules' weights: each tensor the concatenation of theirs (a counter
    without axes, such as batch norm's, from the first), on their device and in their dtype.
    ``make``'s own random initialisation is overwritten, and draws nothing from the global stream."""
    like = next(members[0].parameters())
    with torch.random.fork_rng(devices=[]):
        stacked = make().to(like.device, like.dtype)  # positional: strict_device misses to(device=...)
    states = [m.state_dict() for m in members]
    stacked.load_state_dict(
        {
            k: torch.cat([st[k] for st in states]) if v.dim() else states[0][k]
            for k, v in stacked.state_dict().items()
        }
    )
    return stacked


@torch.no_grad()
def _unstack(stacked: nn.Module, members: Sequence[nn.Module | None]) -> None:
    """The inverse of :func:`_stacked`: member s's slice of every tensor into ``members[s]``."""
    if len(members) != stacked.members:
        raise ValueError(f"need {stacked.members} modules, got {len(members)}")
    for s, member in enumerate(members):
        if member is not None:
            member.load_state_dict(
                {k: v.chunk(stacked.members)[s] if v.dim() else v for k, v in stacked.state_dict().items()}
            )


def dip_input(channels: int, height: int, width: int, seed: int = 0, scale: float = 0.1) -> torch.Tensor:
    """The fixed input z ~ U(0, scale) of shape (1, channels, height, width), as in the
    authors' code (uniform noise scaled by 1/10)."""
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.rand(1, channels, height, width, generator=gen)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per image of (N, C, H, W):
    Σ |x_{i+1,j} − x_{i,j}| + Σ |x_{i,j+1} − x_{i,j}|, shape (N,)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(1)
    return dh + dw


def fit_dip(
    net: nn.Module,
    z: torch.Tensor,
    target: torch.Tensor,
    steps: int,
    lr: float = 0.01,
    operator: Callable[[torch.Tensor], torch.Tensor] | None = None,
    clean: torch.Tensor | None = None,
    input_noise: float = 0.0,
    tv_weight: float = 0.0,
    stop_loss: float | None = None,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> dict[str, list[float]]:
    """Fit the weights w of ``net`` (Adam, learning rate ``lr``) so that f(G_w(z)) matches
    ``target``, minimising

        mean (f(G_w(z + σ_p ε)) − target)² + β · TV(G_w(z)) / (number of pixels),

    with f = ``operator`` (identity if None), β = ``tv_weight``, and fresh ε ~ N(0, I) at each
    step if σ_p = ``input_noise`` > 0 (the authors' input regularisation). z itself is never
    changed and gets no gradient. Stops early when the data term falls to ``stop_loss`` (e.g. the
    noise variance: the discrepancy principle). ``callback(step, output)`` sees each output.
    The network stays in training mode: batch norm uses the statistics of the one image.

    Returns the history ``{"step", "loss", "psnr"}`` (PSNR in dB of the output against
    ``clean``, if given), one entry per step.
    """
    device = next(net.parameters()).device
    z, target = z.detach().to(device), target.to(device)
    outputs: list[torch.Tensor] = []  # the latest output, for the callback

    def loss_fn(_: None, rng: torch.Generator) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        z_in = z + input_noise * torch.randn(z.shape, generator=rng).to(device) if input_noise else z
        out = net(z_in)
        pred = operator(out) if operator is not None else out
        if pred.shape != target.shape:
            raise ValueError(f"f(G(z)) has shape {tuple(pred.shape)} but the target {tuple(target.shape)}")
        data = (pred - target).pow(2).mean()
        loss = data + tv_weight * total_variation(out).sum() / out[0, 0].numel() if tv_weight else data
        outputs[:] = [out.detach()]
        logs = (
            {"loss": data} if clean is None else {"loss": data, "psnr": psnr(out.detach().clamp(0, 1), clean)}
        )
        return loss, logs

    def after_step(step: int, logs: dict) -> bool:
        if callback is not None:
            callback(step, outputs[0])
        return stop_loss is not None and logs["loss"] <= stop_loss

    return fit(
        net, None, loss_fn, steps, lr=lr, seed=seed, desc="DIP", callback=after_step,
        optimizer=torch.optim.Adam(net.parameters(), lr=lr), eval_mode_after=False,
    )  # fmt: skip


def fit_dip_batch(
    nets: Sequence[nn.Module],
    z: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    lr: float = 0.01,
    operator: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tv_weight: float = 0.0,
    stop_loss: float | None = None,
    seed: int = 0,
) -> list[dict[str, list[float]]]:
    """Fit S independent deep image priors at once: member s fits the weights of ``nets[s]`` so
    that f(G_s(z_s)) matches ``targets[s]``, with the loss and the stopping rule of
    :func:`fit_dip` (no input noise, no callback),

        min_{w_1..w_S}  Σ_s [ mean (f(G_{w_s}(z_s)) − targets[s])² + β · TV(G_{w_s}(z_s)) / pixels ].

    The members do not interact: the sum's gradient in w_s is that of member s's own loss, and
    Adam acts on each weight separately, so each member follows the path of its own
    ``fit_dip`` run (up to floating-point rounding). The networks (of one class with a
    stacked form: :class:`SkipNet`, :class:`PixelImage`) are stacked by their class's ``stack``
    (for SkipNets, one grouped convolution per layer, batch statistics per member) and trained
    as one network. For lecture 6's 28×28 fits this was faster than separate fits and than
    ``torch.func.vmap``; for three-level 96×96 networks batching was slower than separate fits
    (the measurements are in the message of commit 29a4661), so benchmark before batching
    larger images.

    ``z`` is (S, C, H, W), one input per member, or (1, C, H, W) shared by all; ``targets`` is
    (S, ...), row s compared with f applied to member s's output (1, C', H, W); ``operator`` f
    must act on each image of a batch (N, C', H, W) separately. A member whose data term falls
    to ``stop_loss`` keeps the weights of that step, as ``fit_dip`` does. The fitted weights are
    written back into ``nets``; returns one history ``{"step", "loss"}`` per member.
    """
    require_int("steps", steps, 0)
    n = len(nets)
    if n == 0 or targets.shape[0] != n:
        raise ValueError(f"need one target per network, got {n} networks and targets {tuple(targets.shape)}")
    if z.dim() != 4 or z.shape[0] not in (1, n):
        raise ValueError(f"z must be (1, C, H, W) or ({n}, C, H, W), got {tuple(z.shape)}")
    if any(type(net) is not type(nets[0]) for net in nets) or not hasattr(type(nets[0]), "stack"):
        raise ValueError(
            "fit_dip_batch needs networks of one architecture that can be stacked (SkipNet, PixelImage)"
        )
    for net in nets:
        net.train()
    ensemble = type(nets[0]).stack(nets)
    device = next(nets[0].parameters()).device
    zs = z.detach().to(device).expand(n, *z.shape[1:]).unsqueeze(1)  # (S, 1, C, H, W)
    targets = targets.to(device)

    def loss_fn(_: None, rng: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = ensemble(zs).squeeze(1)  # (S, C', H, W)
        pred = operator(out) if operator is not None else out
        if pred.shape != targets.shape:
            raise ValueError(f"f(G(z)) has shape {tuple(pred.shape)} but the targets {tuple(targets.shape)}")
        data = (pred - targets).pow(2).flatten(1).mean(1)
        loss = data + tv_weight * total_variation(out) / out[0, 0].numel() if tv_weight else data
        return loss.sum(), {"loss": data}

    histories: list[dict[str, list[float]]] = [{"step": [], "loss": []} for _ in range(n)]
    active = list(range(n))
    stopped: set[int] = set()

    def after_step(step: int, logs: dict) -> bool:
        """Log every active member; a member whose data term reaches ``stop_loss`` keeps this
        step's weights; stop when none is left."""
        for s in list(active):
            histories[s]["step"].append(step)
            histories[s]["loss"].append(logs["loss"][s])
            if stop_loss is not None and logs["loss"][s] <= stop_loss:
                active.remove(s)
                stopped.add(s)
                ensemble.unstack([net if i == s else None for i, net in enumerate(nets)])
        return not active

    fit(
        ensemble, None, loss_fn, steps, lr=lr, seed=seed, desc=f"DIP ×{n}", callback=after_step,
        optimizer=torch.optim.Adam(ensemble.parameters(), lr=lr), eval_mode_after=False,
    )  # fmt: skip
    ensemble.unstack([None if i in stopped else net for i, net in enumerate(nets)])
    return histories
