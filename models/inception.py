"""``InceptionV1Video``: the S3D paper's InceptionV1 family — I2D, I3D, S3D, S3D-G,
bottom-heavy / top-heavy at any transition layer, Fast-S3D (S3D §4, Fig. 2–3, Tables 2–3).

Layers (TF-slim names, which the S3D paper uses; torchvision's GoogLeNet names in brackets) and
the stage each one belongs to:

=========  ====================================  =============  ========================
stage      layers                                output (224²)  channels
=========  ====================================  =============  ========================
stage1     conv_1a 7×7/2 [conv1], max_2a 3×3/2   56²            64
stage2     conv_2b 1×1 [conv2], conv_2c 3×3 [conv3]  56²        192
stage3     max_3a 3×3/2, mixed_3b–3c [inception3a–3b]  28²      480
stage4     max_4a 3×3/2, mixed_4b–4f [inception4a–4e]  14²      832
stage5     max_5a 2×2/2, mixed_5b–5c [inception5a–5b]  7²       1024
=========  ====================================  =============  ========================

A layer is 2D (``1×k×k``), 3D (``3×k×k``; the stem ``7×7×7``) or separable (``1×k×k`` then
``kt×1×1``, Fig. 3c) according to ``temporal`` and the layout:

- ``temporal_layout="all"``: every layer as ``temporal`` says (``none`` → I2D, ``i3d`` → I3D,
  ``s3d`` → S3D; ``gating=True`` → S3D-G, gating after each temporal conv, §4.6).
- ``"top_heavy"``: layers before ``transition`` are 2D, from ``transition`` on temporal
  (Fast-S3D = separable top-heavy from ``mixed_4b``, §4.4).
- ``"bottom_heavy"``: layers before ``transition`` are temporal, from it on 2D (§4.2).

S3D blocks put a temporal conv on all four branches (footnote 5): the two 3×3 branches become
separable and the 1×1 and pool branches get a ``kt×1×1`` conv after their 1×1
(``s3d_all_branches=False``: the 3×3 branches only, as the released TF-slim ``s3dg.py`` and
torchvision's S3D). The stem follows the layout (I3D ``7×7×7``; S3D separable ``1×7×7 → 7×1×1``,
Fig. 6) unless ``stem=`` says otherwise; the released S3D-G is ``s3d_all_branches=False,
stem="3d", stem_temporal_kernel=3, gate_bias=False``. No block structure reproduces all three
rows of the paper's Table 2 complexity within 3 % (``python -m benchmarks.s3d_structure_search``,
docs/backbones.md).

With ``temporal_pooling`` (the papers' default for Inception) the stem conv and the ``max_4a`` /
``max_5a`` pools stride 2 in time (64 frames → 8) in every variant: a 2D stem then keeps every
other frame, as in the S3D authors' released code, where the bottom layers of I2D / top-heavy
models are 2D but strided like I3D's (I2D keeps the pools' temporal stride, footnote 4). This is
what makes Fast-S3D cheaper than I3D (§4.4). Without temporal pooling, T is kept throughout.

Max-pools use torchvision's GoogLeNet arithmetic (``ceil_mode``), so ``"center"``-inflated
weights reproduce its 2D feature maps exactly on a repeated-frame video; ``pool_padding=
"symmetric"`` gives torchvision's S3D arithmetic instead (padding ``(k-1)//2``, floor), which the
``torchvision_s3d`` preset uses to reproduce ``torchvision.models.video.s3d``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from models.backbone import STAGE_NAMES, VideoBackbone, init_weights, scaled
from models.temporal import FeatureGating
from models.weights import WeightFormat, register_format

#: (in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool proj) per mixed block; the "5×5" branch is
#: 3×3 as in TF-slim's and torchvision's InceptionV1 (which the S3D paper builds on)
MIXED: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "mixed_3b": (192, 64, 96, 128, 16, 32, 32),
    "mixed_3c": (256, 128, 128, 192, 32, 96, 64),
    "mixed_4b": (480, 192, 96, 208, 16, 48, 64),
    "mixed_4c": (512, 160, 112, 224, 24, 64, 64),
    "mixed_4d": (512, 128, 128, 256, 24, 64, 64),
    "mixed_4e": (512, 112, 144, 288, 32, 64, 64),
    "mixed_4f": (528, 256, 160, 320, 32, 128, 128),
    "mixed_5b": (832, 256, 160, 320, 32, 128, 128),
    "mixed_5c": (832, 384, 192, 384, 48, 128, 128),
}

#: the spatio-temporal layers in order — valid ``transition`` points
LAYERS: tuple[str, ...] = ("conv_1a", "conv_2b", "conv_2c", *MIXED)

#: which layers each stage holds (pools are not layers: they do not change with the layout)
STAGE_LAYERS: dict[str, tuple[str, ...]] = {
    "stage1": ("conv_1a",),
    "stage2": ("conv_2b", "conv_2c"),
    "stage3": ("mixed_3b", "mixed_3c"),
    "stage4": ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"),
    "stage5": ("mixed_5b", "mixed_5c"),
}

#: our layer name → torchvision GoogLeNet's
TORCHVISION_NAMES: dict[str, str] = {
    "conv_1a": "conv1",
    "conv_2b": "conv2",
    "conv_2c": "conv3",
    "mixed_3b": "inception3a",
    "mixed_3c": "inception3b",
    "mixed_4b": "inception4a",
    "mixed_4c": "inception4b",
    "mixed_4d": "inception4c",
    "mixed_4e": "inception4d",
    "mixed_4f": "inception4e",
    "mixed_5b": "inception5a",
    "mixed_5c": "inception5b",
}

Mode = Literal["2d", "3d", "sep"]

#: ``InceptionV1Video(stem=...)`` → the stem's mode (``"auto"``, not listed: the layout's)
_STEM_MODES: dict[str, Mode] = {"2d": "2d", "3d": "3d", "separable": "sep"}


class ConvUnit(nn.Module):
    """Conv → BN → ReLU, 2D (``1×k×k``), 3D (``kt×k×k``) or separable (``1×k×k`` → BN → ReLU →
    ``kt×1×1`` → BN → ReLU, S3D Fig. 3c), optionally gated after the temporal conv (S3D-G §4.6).

    ``[B, C_in, T, H, W] → [B, C_out, T/st, H/s, W/s]``. BN ε = 1e-3 as in torchvision's
    GoogLeNet so its weights load exactly.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        mode: Mode,
        stride: int = 1,
        temporal_stride: int = 1,
        temporal_kernel: int = 3,
        gating: bool = False,
        gate_bias: bool = True,
    ) -> None:
        super().__init__()
        pad = kernel // 2
        kt = temporal_kernel if mode == "3d" else 1
        # a 2D unit with a temporal stride subsamples frames (the released S3D-G code's 2D stem)
        st = temporal_stride if mode != "sep" else 1
        self.mode = mode
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            (kt, kernel, kernel),
            (st, stride, stride),
            (kt // 2, pad, pad),
            bias=False,
        )
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3)
        self.relu = nn.ReLU(inplace=True)
        if mode == "sep":
            self.temporal = nn.Conv3d(
                out_channels,
                out_channels,
                (temporal_kernel, 1, 1),
                (temporal_stride, 1, 1),
                (temporal_kernel // 2, 0, 0),
                bias=False,
            )
            self.temporal_bn = nn.BatchNorm3d(out_channels, eps=1e-3)
        self.gate = FeatureGating(out_channels, gate_bias) if gating else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn(self.conv(x)))
        if self.mode == "sep":
            x = self.relu(self.temporal_bn(self.temporal(x)))
        return self.gate(x)


class MaxPool(nn.Module):
    """``kt×k×k`` max-pool as a temporal max-pool then a spatial one (max is separable, so this
    is exactly the 3D max-pool) — time "SAME" (``T → ⌈T/st⌉``, also for ``T=1``), space in
    torchvision's ``ceil_mode`` arithmetic. ``[B, C, T, H, W] → [B, C, ⌈T/st⌉, ⌈(H-k)/s⌉+1, …]``.
    """

    def __init__(
        self, kernel: int, stride: int, kt: int = 1, st: int = 1, symmetric: bool = False
    ) -> None:
        super().__init__()
        # "SAME" in time: T → ⌈T/st⌉ for odd kt (padding kt//2) and even kt (ceil mode), T=1 too;
        # symmetric (torchvision's S3D): padding (k-1)//2 and floor, in time and space
        self.temporal: nn.Module = (
            nn.MaxPool3d((kt, 1, 1), (st, 1, 1), ((kt - 1) // 2 if symmetric or kt % 2 else 0,
                                                  0, 0),
                         ceil_mode=not symmetric and kt % 2 == 0)
            if kt > 1 or st > 1
            else nn.Identity()
        )
        pad = (kernel - 1) // 2 if symmetric else 0
        self.spatial = nn.MaxPool3d((1, kernel, kernel), (1, stride, stride), (0, pad, pad),
                                    ceil_mode=not symmetric)

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.temporal(x))


class MixedBlock(nn.Module):
    """An Inception block (S3D Fig. 3): four branches concatenated along channels.

    ``mode`` ``2d`` → Fig. 3a, ``3d`` → Fig. 3b (3×3 convs and the pool inflated), ``sep`` →
    Fig. 3c (3×3 convs separable, and — ``all_branches``, footnote 5 — a temporal conv after the
    1×1 of branches 1 and 4; without it, the layout of the released S3D-G code, where only the
    3×3 branches have temporal convs and the gate follows every branch).
    ``[B, C_in, T, H, W] → [B, C_out, T, H, W]``.
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int, int, int, int],
        mode: Mode,
        gating: bool = False,
        all_branches: bool = True,
        gate_bias: bool = True,
    ) -> None:
        super().__init__()
        c_in, c1, c2r, c2, c3r, c3, c4 = widths
        temporal = mode != "2d"
        one_by_one: Mode = "sep" if mode == "sep" and all_branches else "2d"
        # gates follow temporal convs; a 2D block has none
        gate = {"gating": gating and temporal, "gate_bias": gate_bias}
        self.branch1 = ConvUnit(c_in, c1, 1, one_by_one, **gate)
        self.branch2 = nn.Sequential(
            ConvUnit(c_in, c2r, 1, "2d"), ConvUnit(c2r, c2, 3, mode, **gate)
        )
        self.branch3 = nn.Sequential(
            ConvUnit(c_in, c3r, 1, "2d"), ConvUnit(c3r, c3, 3, mode, **gate)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool3d((3 if temporal else 1, 3, 3), 1, (1 if temporal else 0, 1, 1)),
            ConvUnit(c_in, c4, 1, one_by_one, **gate),
        )
        self.out_channels = c1 + c2 + c3 + c4

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([b(x) for b in branches], dim=1)


class InceptionStage(nn.Module):
    """An optional leading max-pool then named layers, run in order. 5-D in, 5-D out."""

    def __init__(self, pool: nn.Module | None, layers: dict[str, nn.Module]) -> None:
        super().__init__()
        self.pool = pool if pool is not None else nn.Identity()
        self.layers = nn.ModuleDict(layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        for layer in self.layers.values():
            x = layer(x)
        return x


class InceptionV1Video(VideoBackbone):
    """InceptionV1 (GoogLeNet) for video: I2D / I3D / S3D / S3D-G / top- and bottom-heavy.

    ``forward(x: [B, C, T, H, W]) -> {"stage1": …, …, "stage5": …}`` (see the module docstring
    for what each stage holds); ``out_channels`` per stage; ``copy_stages(first, last)`` gives
    fresh stages ``first..last``. Weights are loaded after construction
    (``models.create_backbone`` / ``models.inception_v1_video`` with ``pretrained=``).

    Args:
        temporal: ``"none"`` (2D everywhere: I2D), ``"i3d"`` (3D convs), ``"s3d"`` (separable).
        temporal_layout: ``"all"``, ``"top_heavy"`` or ``"bottom_heavy"`` (S3D §4.2).
        transition: the first layer of the upper part for the heavy layouts, one of ``LAYERS``
            (e.g. ``"mixed_4b"``, which Fast-S3D uses).
        gating: S3D-G feature gating after every temporal conv (S3D §4.6).
        temporal_pooling: temporal stride 2 in the stem conv and the ``max_4a`` / ``max_5a`` pools
            (I3D's 8× reduction); off keeps T.
        temporal_kernel: ``kt`` of the 3×3 layers (the stem uses 7).
        s3d_all_branches: S3D blocks get a temporal conv on all four branches (footnote 5); off
            gives the released S3D-G code's layout (temporal convs on the 3×3 branches only).
        stem: ``"auto"`` (the layout's mode: ``7×7×7`` for I3D, separable ``1×7×7 → 7×1×1`` for
            S3D as in Fig. 6 and torchvision's S3D, 2D for I2D), or ``"2d"``, ``"3d"``,
            ``"separable"`` whatever the layout — the released ``s3dg.py`` uses a non-separable
            ``3×7×7`` stem (``stem="3d", stem_temporal_kernel=3``). Only a separable stem is
            gated (§4.6: gates follow the ``k×1×1`` temporal convs; the released code gates
            from ``conv_2c`` on).
        stem_temporal_kernel: ``kt`` of a 3D or separable stem (7 in I3D).
        gate_bias: the ``b`` of §4.6's ``σ(W·pool(X) + b)``; the released code has none.
        width_multiplier: scales every channel count.
        in_channels: input channels (3 for RGB, 2 for optical flow).
        pool_padding: ``"ceil"`` (torchvision's GoogLeNet) or ``"symmetric"`` (torchvision's S3D).
    """

    def __init__(
        self,
        temporal: Literal["none", "i3d", "s3d"] = "i3d",
        temporal_layout: Literal["all", "top_heavy", "bottom_heavy"] = "all",
        transition: str = "mixed_4b",
        gating: bool = False,
        temporal_pooling: bool = True,
        temporal_kernel: int = 3,
        s3d_all_branches: bool = True,
        width_multiplier: float = 1.0,
        in_channels: int = 3,
        pool_padding: Literal["ceil", "symmetric"] = "ceil",
        stem: Literal["auto", "2d", "3d", "separable"] = "auto",
        stem_temporal_kernel: int = 7,
        gate_bias: bool = True,
    ) -> None:
        super().__init__(in_channels)
        if temporal not in ("none", "i3d", "s3d"):
            raise ValueError(f"temporal must be 'none', 'i3d' or 's3d', got {temporal!r}")
        if temporal_layout not in ("all", "top_heavy", "bottom_heavy"):
            raise ValueError(
                f"temporal_layout must be 'all', 'top_heavy' or 'bottom_heavy', got "
                f"{temporal_layout!r}"
            )
        if transition not in LAYERS:
            raise ValueError(f"transition must be one of {LAYERS}, got {transition!r}")
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
        if pool_padding not in ("ceil", "symmetric"):
            raise ValueError(f"pool_padding must be 'ceil' or 'symmetric', got {pool_padding!r}")
        if stem != "auto" and stem not in _STEM_MODES:
            raise ValueError(f"stem must be 'auto' or one of {tuple(_STEM_MODES)}, got {stem!r}")
        self.temporal = temporal
        self.temporal_layout = temporal_layout
        self.transition = transition
        self.gating = gating
        self.temporal_pooling = temporal_pooling
        self.temporal_kernel = temporal_kernel
        self.s3d_all_branches = s3d_all_branches
        self.width_multiplier = width_multiplier
        self.pool_padding = pool_padding
        self.stem = stem
        self.stem_temporal_kernel = stem_temporal_kernel
        self.gate_bias = gate_bias
        self.modes = {name: self._mode(name) for name in LAYERS}
        if stem != "auto":
            self.modes["conv_1a"] = _STEM_MODES[stem]
        self.build_stages()

    def _mode(self, layer: str) -> Mode:
        if self.temporal == "none":
            return "2d"
        temporal_mode: Mode = "3d" if self.temporal == "i3d" else "sep"
        if self.temporal_layout == "all":
            return temporal_mode
        upper = LAYERS.index(layer) >= LAYERS.index(self.transition)
        is_temporal = upper if self.temporal_layout == "top_heavy" else not upper
        return temporal_mode if is_temporal else "2d"

    def stage_stride(self, name: str) -> tuple[int, int]:
        tp = 2 if self.temporal_pooling else 1
        return {"stage1": (tp, 4), "stage2": (1, 1), "stage3": (1, 2), "stage4": (tp, 2),
                "stage5": (tp, 2)}[name]

    def make_stage(self, name: str) -> InceptionStage:
        """A freshly initialised stage; also records its ``out_channels``."""
        kt, tp = self.temporal_kernel, self.temporal_pooling
        sym = self.pool_padding == "symmetric"

        def s(channels: int) -> int:
            return scaled(channels, self.width_multiplier)

        layers: dict[str, nn.Module] = {}
        pool: nn.Module | None = None
        if name == "stage1":
            mode = self.modes["conv_1a"]
            layers["conv_1a"] = ConvUnit(
                self.in_channels, s(64), 7, mode, stride=2, temporal_stride=2 if tp else 1,
                temporal_kernel=self.stem_temporal_kernel, gating=self.gating and mode == "sep",
                gate_bias=self.gate_bias,
            )
            out = s(64)
            # the stem's pool is part of stage1 (the contract: stage1 is after the stem max-pool)
            layers["max_2a"] = MaxPool(3, 2, symmetric=sym)
        elif name == "stage2":
            layers["conv_2b"] = ConvUnit(s(64), s(64), 1, "2d")
            layers["conv_2c"] = ConvUnit(
                s(64), s(192), 3, self.modes["conv_2c"], temporal_kernel=kt,
                gating=self.gating and self.modes["conv_2c"] != "2d", gate_bias=self.gate_bias,
            )
            out = s(192)
        else:
            pools = {
                "stage3": MaxPool(3, 2, symmetric=sym),
                "stage4": MaxPool(3, 2, kt=3 if tp else 1, st=2 if tp else 1, symmetric=sym),
                "stage5": MaxPool(2, 2, kt=2 if tp else 1, st=2 if tp else 1, symmetric=sym),
            }
            if name not in pools:
                raise KeyError(f"unknown stage {name!r}; stages are {STAGE_NAMES}")
            pool = pools[name]
            out = 0
            for layer in STAGE_LAYERS[name]:
                widths = tuple(s(c) for c in MIXED[layer])
                # a block's input is what really arrives (rounded widths need not add up)
                widths = (out or self.out_channels[_previous(name)], *widths[1:])
                block = MixedBlock(
                    widths, self.modes[layer], self.gating, self.s3d_all_branches,  # type: ignore[arg-type]
                    self.gate_bias,
                )
                layers[layer] = block
                out = block.out_channels
        self.out_channels[name] = out
        stage = InceptionStage(pool, layers)
        init_weights(stage)
        return stage

    @property
    def is_2d(self) -> bool:
        """Every frame is processed alone (I2D without temporal pooling): stage ``t`` of every
        feature map depends on input frame ``t`` only (see ``VideoResNet.is_2d``)."""
        return self.temporal == "none" and not self.temporal_pooling

    # -- where weights come from (models.weights) ------------------------------------------------

    #: torchvision's ImageNet GoogLeNet (``pretrained="imagenet"``); it was trained with
    #: ``transform_input=True`` (ImageNet-normalised input re-normalised to [-1, 1] inside), so
    #: feed such weights [-1, 1]-scaled frames
    imagenet_arch = "googlenet"
    weight_formats: tuple[str, ...] = (
        "torchvision GoogLeNet", "torchvision S3D", "Finegrain InceptionV1Video"
    )


def _previous(stage: str) -> str:
    return STAGE_NAMES[STAGE_NAMES.index(stage) - 1]


# -- key maps: InceptionV1Video key → the source's key (None: no counterpart) ----------------------

_LAYER_KEY = re.compile(r"^stage\d\.layers\.([a-z0-9_]+)\.(.+)$")


def googlenet_key_map(key: str, model: nn.Module | None = None) -> str | None:
    """``InceptionV1Video`` key → torchvision ``GoogLeNet`` key, or ``None`` for new parameters.

    ``stage3.layers.mixed_3b.branch2.1.conv.weight`` → ``inception3a.branch2.1.conv.weight``;
    a separable unit's spatial conv and first BN map, its ``temporal*`` and ``gate`` do not.
    """
    m = _LAYER_KEY.match(key)
    if m is None or m.group(1) not in TORCHVISION_NAMES:
        return None
    rest = m.group(2)
    if not re.search(r"(^|\.)(conv\.weight|bn\.[a-z_]+)$", rest):
        return None
    return f"{TORCHVISION_NAMES[m.group(1)]}.{rest}"


#: our layer name → its index in ``torchvision.models.video.s3d().features``
S3D_FEATURES: dict[str, int] = {
    "conv_1a": 0, "conv_2b": 2, "conv_2c": 3, "mixed_3b": 5, "mixed_3c": 6, "mixed_4b": 8,
    "mixed_4c": 9, "mixed_4d": 10, "mixed_4e": 11, "mixed_4f": 12, "mixed_5b": 14, "mixed_5c": 15,
}

# inside one unit: torchvision's Conv3dNormActivation is (conv, bn, relu) and its
# TemporalSeparableConv is (spatial unit, temporal unit)
_UNIT_PARTS = {"conv": "0.0", "bn": "0.1", "temporal": "1.0", "temporal_bn": "1.1"}
_PLAIN_PARTS = {"conv": "0", "bn": "1"}
#: our branch → torchvision's SepInceptionBlock3D branch and the unit's position in it
_S3D_BRANCHES = {"branch1": "branch0", "branch2.0": "branch1.0", "branch2.1": "branch1.1",
                 "branch3.0": "branch2.0", "branch3.1": "branch2.1", "branch4.1": "branch3.1"}


def torchvision_s3d_key_map(key: str, model: nn.Module | None = None) -> str | None:
    """``InceptionV1Video`` key → ``torchvision.models.video.s3d`` key (the ``torchvision_s3d``
    preset: separable 3×3 branches only, symmetric pools), or ``None``."""
    m = _LAYER_KEY.match(key)
    if m is None or m.group(1) not in S3D_FEATURES:
        return None
    index, rest = S3D_FEATURES[m.group(1)], m.group(2)
    unit, part, param = _split_unit(rest)
    if part is None:
        return None
    if unit == "":  # a stem / stage-2 conv unit
        # conv_2b is a 1×1 in every variant; the stem and conv_2c follow the layout
        separable = m.group(1) != "conv_2b" and (model is None or model.modes[m.group(1)] == "sep")
        parts = _UNIT_PARTS if separable else _PLAIN_PARTS
        return f"features.{index}.{parts[part]}.{param}" if part in parts else None
    if unit not in _S3D_BRANCHES:
        return None
    parts = _UNIT_PARTS if unit in ("branch2.1", "branch3.1") else _PLAIN_PARTS
    if part not in parts:
        return None
    return f"features.{index}.{_S3D_BRANCHES[unit]}.{parts[part]}.{param}"


def _split_unit(rest: str) -> tuple[str, str | None, str]:
    """``branch2.1.temporal_bn.running_mean`` → ``("branch2.1", "temporal_bn", "running_mean")``."""
    m = re.match(r"^(?:(branch\d(?:\.\d)?)\.)?(conv|bn|temporal|temporal_bn)\.([a-z_]+)$", rest)
    if m is None:
        return "", None, ""
    return m.group(1) or "", m.group(2), m.group(3)


def _looks_like_googlenet(state: Mapping) -> bool:
    return "inception3a.branch1.conv.weight" in state


def _looks_like_torchvision_s3d(state: Mapping) -> bool:
    return "features.5.branch0.0.weight" in state and "features.0.0.0.weight" in state


def _looks_like_finegrain_inception(state: Mapping) -> bool:
    return any(k.startswith("stage3.layers.mixed_3b.") for k in state)


register_format(WeightFormat(
    "torchvision GoogLeNet", "a torchvision GoogLeNet state dict (ImageNet InceptionV1)",
    _looks_like_googlenet, googlenet_key_map, inflate=True, classifier=("fc", "aux1", "aux2")))
register_format(WeightFormat(
    "torchvision S3D", "a torchvision video S3D state dict (torchvision.models.video.s3d)",
    _looks_like_torchvision_s3d, torchvision_s3d_key_map, classifier=("classifier",)))
register_format(WeightFormat(
    "Finegrain InceptionV1Video",
    "a Finegrain InceptionV1Video backbone (checkpoint or state dict)",
    _looks_like_finegrain_inception, None))
