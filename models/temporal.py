"""Temporal building blocks shared by ``VideoResNet`` and ``InceptionV1Video``.

Every module here maps a 5-D ``[B, C, T, H, W]`` tensor to a 5-D tensor. "2D" convolutions are
``Conv3d`` with a temporal kernel of 1, which is exactly a per-frame 2D convolution (the same
arithmetic as folding T into the batch, without the copies a fold/unfold costs), so one code path
serves TSN, TSM, TAM, I3D, S3D and R(2+1)D — the unified framework of the unified-analysis paper
(§4, Fig. 3): a stack of spatio-temporal modules with optional temporal pooling.
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

TemporalKind = Literal["none", "i3d", "s3d", "r2plus1d", "tam", "tsm"]
TEMPORAL_KINDS: tuple[str, ...] = ("none", "i3d", "s3d", "r2plus1d", "tam", "tsm")

#: kinds whose temporal modelling lives inside the 3×3 convolution (3D-CNN family)
CONV_KINDS: tuple[str, ...] = ("i3d", "s3d", "r2plus1d")
#: kinds that keep 2D convolutions and add a separate temporal operator (2D-CNN family)
MIXER_KINDS: tuple[str, ...] = ("tam", "tsm")


def _triple(v: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def r2plus1d_midplanes(in_channels: int, out_channels: int, k: int = 3, kt: int = 3) -> int:
    """Mid width that gives a (2+1)D conv the parameters of the full ``kt×k×k`` conv.

    Tran et al. (R(2+1)D) and torchvision's ``r2plus1d_18`` use this; the unified-analysis paper
    (§4) does *not* expand (mid = out), to align with S3D.
    """
    return (in_channels * out_channels * kt * k * k) // (in_channels * k * k + kt * out_channels)


class SeparableConv3d(nn.Module):
    """``1×k×k`` spatial conv → BN → ReLU → ``kt×1×1`` temporal conv (S3D §4.3, Fig. 3c).

    ``[B, C_in, T, H, W] → [B, C_out, T/st, H/s, W/s]``. The caller applies BN/ReLU after the
    temporal conv, so the module replaces a single ``kt×k×k`` conv one-for-one.

    Args:
        mid_channels: width between the two convs; ``None`` means ``out_channels`` (no expansion,
            as the unified-analysis paper's S3D-ResNet).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
        padding: tuple[int, int, int] = (0, 0, 0),
        mid_channels: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        kt, kh, kw = kernel_size
        st, sh, sw = stride
        pt, ph, pw = padding
        mid = mid_channels or out_channels
        self.spatial = nn.Conv3d(
            in_channels, mid, (1, kh, kw), stride=(1, sh, sw), padding=(0, ph, pw), bias=False
        )
        self.bn = nn.BatchNorm3d(mid)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = nn.Conv3d(
            mid, out_channels, (kt, 1, 1), stride=(st, 1, 1), padding=(pt, 0, 0), bias=bias
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(self.relu(self.bn(self.spatial(x))))


def spatiotemporal_conv(
    kind: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    temporal_stride: int = 1,
    temporal_kernel: int = 3,
    expand: bool = False,
    mid_channels: int | None = None,
) -> nn.Module:
    """The ``k×k`` convolution of a residual block / stem, made 2D, 3D or separable by ``kind``.

    - ``none`` / ``tam`` / ``tsm``: ``1×k×k`` (per-frame 2D).
    - ``i3d``: ``kt×k×k`` (inflated, Carreira & Zisserman; unified-analysis §4).
    - ``s3d`` / ``r2plus1d``: ``1×k×k`` then ``kt×1×1`` (S3D §4.3; unified-analysis §4),
      ``expand=True`` gives R(2+1)D's parameter-matched mid width instead (or ``mid_channels``
      when given: torchvision's BasicBlock reuses its first conv's mid width for the second).
    """
    pad = kernel_size // 2
    if kind in CONV_KINDS:
        size = (temporal_kernel, kernel_size, kernel_size)
        strides = (temporal_stride, stride, stride)
        padding = (temporal_kernel // 2, pad, pad)
        if kind == "i3d":
            return nn.Conv3d(in_channels, out_channels, size, strides, padding, bias=False)
        mid = out_channels
        if expand:
            mid = mid_channels or r2plus1d_midplanes(
                in_channels, out_channels, kernel_size, temporal_kernel
            )
        return SeparableConv3d(in_channels, out_channels, size, strides, padding, mid)
    if kind in ("none", *MIXER_KINDS):
        return nn.Conv3d(
            in_channels,
            out_channels,
            (1, kernel_size, kernel_size),
            (temporal_stride, stride, stride),
            (0, pad, pad),
            bias=False,
        )
    raise ValueError(f"temporal must be one of {TEMPORAL_KINDS}, got {kind!r}")


class TemporalShift(nn.Module):
    """TSM (Lin et al.; unified-analysis §6.1 Table 5): shift channels along time, zero-padded.

    The first ``C/fold_div`` channels take the *next* frame's values (shift towards the past),
    the following ``C/fold_div`` take the *previous* frame's, the rest are untouched; frames
    shifted in from outside the clip are zeros. No parameters, no FLOPs.
    ``[B, C, T, H, W] → [B, C, T, H, W]``.
    """

    def __init__(self, fold_div: int = 8) -> None:
        super().__init__()
        self.fold_div = fold_div

    def forward(self, x: Tensor) -> Tensor:
        fold = x.shape[1] // self.fold_div
        out = torch.zeros_like(x)
        out[:, :fold, :-1] = x[:, :fold, 1:]  # frame t sees t+1
        out[:, fold : 2 * fold, 1:] = x[:, fold : 2 * fold, :-1]  # frame t sees t-1
        out[:, 2 * fold :] = x[:, 2 * fold :]
        return out

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}"


class TemporalAggregation(nn.Module):
    """TAM (Fan et al.; unified-analysis Table 1 "1D dw Conv."): depthwise ``kt×1×1`` conv, ReLU.

    Each channel blends its own values at ``t-1, t, t+1`` with learned weights (the TAM paper's
    per-offset depthwise 1×1 convs summed after shifting), then ReLU. Initialised to the identity
    (centre tap 1): placed on a block's input, which is post-ReLU and hence ≥ 0, it leaves an
    ImageNet-initialised TSN's function unchanged at the start of training.
    ``[B, C, T, H, W] → [B, C, T, H, W]``.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            channels,
            channels,
            (kernel_size, 1, 1),
            padding=(kernel_size // 2, 0, 0),
            groups=channels,
            bias=False,
        )
        self.relu = nn.ReLU(inplace=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :, self.conv.kernel_size[0] // 2] = 1.0

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x))


class FeatureGating(nn.Module):
    """S3D-G spatio-temporal feature gating (S3D §4.6, Eq. 2): ``Y = σ(W·pool(X) + b) ⊙ X``.

    ``pool`` averages over T, H, W; ``W`` is ``C×C``. ``[B, C, T, H, W] → [B, C, T, H, W]``.
    ``bias=False`` drops ``b``, as the released TF-slim ``s3dg.py`` does.
    """

    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))  # [B, C]
        return x * rearrange(gate, "b c -> b c 1 1 1")


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al.; unified-analysis §6.1 "NLN").

    ``z = x + BN(W_z · softmax(θ(x)ᵀ φ(x)) g(x))`` over all T·H·W positions, inner width ``C/2``,
    ``φ`` and ``g`` max-pooled 2× in space (Wang et al. §3.3). The last BN starts at zero so an
    inserted block is the identity at initialisation (and does not disturb ImageNet weights).
    ``[B, C, T, H, W] → [B, C, T, H, W]``.
    """

    def __init__(self, channels: int, inner_channels: int | None = None, subsample: bool = True):
        super().__init__()
        inner = inner_channels or max(1, channels // 2)
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.pool = nn.MaxPool3d((1, 2, 2)) if subsample else nn.Identity()
        self.out = nn.Conv3d(inner, channels, 1, bias=False)
        self.bn = nn.BatchNorm3d(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        t, h, w = x.shape[2:]
        theta = rearrange(self.theta(x), "b c t h w -> b (t h w) c")
        pooled = self.pool(x) if min(h, w) >= 2 else x
        phi = rearrange(self.phi(pooled), "b c t h w -> b c (t h w)")
        g = rearrange(self.g(pooled), "b c t h w -> b (t h w) c")
        attention = torch.softmax(theta @ phi, dim=-1)  # [B, THW, T'H'W']
        y = rearrange(attention @ g, "b (t h w) c -> b c t h w", t=t, h=h, w=w)
        return x + self.bn(self.out(y))
