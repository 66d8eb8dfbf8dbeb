"""``VideoResNet``: one ResNet whose per-stage temporal module is chosen by config.

The unified-analysis paper (§4, Fig. 3) views every 2D and 3D action model as a stack of
spatio-temporal modules with optional temporal pooling; only the module differs. Here that
module is chosen by ``temporal``:

==========  =============================================================  =====================
temporal    the 3×3 conv of each block                                    paper
==========  =============================================================  =====================
none        1×3×3 (per-frame 2D; TSN / I2D)                                unified §4, Table 1
i3d         3×3×3 (inflated)                                               unified §4; dfb §4.2
s3d         1×3×3 → BN → ReLU → 3×1×1, no channel expansion               unified §4; S3D §4.3
r2plus1d    as s3d (``r2plus1d_expand=True``: Tran et al.'s mid width)     unified §4
tam         1×3×3, plus a depthwise 3×1×1 temporal aggregation on input   unified Table 1, 5
tsm         1×3×3, plus a residual temporal shift of 1/8 + 1/8 channels   unified Table 5
==========  =============================================================  =====================

All tensors stay 5-D ``[B, C, T, H, W]``; a ``1×k×k`` ``Conv3d`` *is* a per-frame 2D conv (and
``BatchNorm3d`` over ``B, T, H, W`` is ``BatchNorm2d`` over the ``B·T`` frames), so a 2D backbone
here computes exactly what a 2D ResNet on frames folded into the batch computes — the tests check
it against torchvision's ``resnet`` frame by frame — without a fold/unfold copy at every stage.

Stride sits on the 3×3 conv of a stage's first block (torchvision's ResNet v1.5; dfb §4.2
"Network architecture").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonargparse.typing import PositiveFloat, PositiveInt
from torch import Tensor, nn

from models.backbone import STAGE_NAMES, VideoBackbone, init_weights, scaled
from models.temporal import (
    CONV_KINDS,
    MIXER_KINDS,
    TEMPORAL_KINDS,
    FeatureGating,
    NonLocalBlock,
    SeparableConv3d,
    TemporalAggregation,
    TemporalShift,
    r2plus1d_midplanes,
    spatiotemporal_conv,
)
from models.weights import WeightFormat, register_format

#: blocks per residual stage (stage2..stage5) and block type, He et al. Table 1
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

#: which stages carry the temporal module for the named layouts ("stage1" = the stem conv).
#: top-heavy / bottom-heavy follow S3D §4.2 and unified-analysis Table 6 at stage granularity.
STAGE_LAYOUTS: dict[str, tuple[str, ...]] = {
    "all": STAGE_NAMES,
    "top_heavy": ("stage4", "stage5"),
    "bottom_heavy": ("stage1", "stage2", "stage3"),
}

StemKind = Literal["auto", "2d", "3d", "separable", "dfb"]


def resolve_stages(spec: str | Iterable[str], names: Sequence[str] = STAGE_NAMES) -> frozenset:
    """``"all" | "top_heavy" | "bottom_heavy" | [stage names]`` → the set of stage names."""
    if isinstance(spec, str):
        if spec in STAGE_LAYOUTS:
            return frozenset(STAGE_LAYOUTS[spec])
        if spec in names:
            return frozenset({spec})
        raise ValueError(
            f"temporal_stages must be one of {sorted(STAGE_LAYOUTS)} or a list of {list(names)}, "
            f"got {spec!r}"
        )
    stages = frozenset(spec)
    unknown = sorted(stages - set(names))
    if unknown:
        raise ValueError(f"unknown stage name(s) {unknown}; valid: {list(names)}")
    return stages


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels)


class Stem(nn.Module):
    """``stage1``: ``kt×7×7`` conv (stride 2 in space) → BN → ReLU → ``3×3`` max-pool.

    ``[B, C_in, T, H, W] → [B, C, T/(st·pt), H/4, W/4]`` (``H/2`` without the pool).

    Kinds: ``2d`` (1×7×7, TSN), ``3d`` (3×7×7, the unified-analysis I3D-R50), ``separable``
    (1×7×7 then 3×1×1, S3D / R(2+1)D), ``dfb`` (5×7×7 temporal stride 2 and 3×3×3 max-pool temporal
    stride 2: time ÷ 4 at the stem, Wang et al.'s I3D that the dfb paper follows, §4.2).
    """

    def __init__(
        self,
        kind: str,
        in_channels: int,
        out_channels: int,
        pool: bool = True,
        mid_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        if kind == "2d":
            self.conv: nn.Module = nn.Conv3d(
                in_channels, out_channels, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False
            )
        elif kind == "3d":
            self.conv = nn.Conv3d(
                in_channels, out_channels, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False
            )
        elif kind == "dfb":
            self.conv = nn.Conv3d(
                in_channels, out_channels, (5, 7, 7), (2, 2, 2), (2, 3, 3), bias=False
            )
        elif kind == "separable":
            self.conv = SeparableConv3d(
                in_channels, out_channels, (3, 7, 7), (1, 2, 2), (1, 3, 3), mid_channels
            )
        else:
            raise ValueError(f"stem must be one of '2d', '3d', 'separable', 'dfb'; got {kind!r}")
        self.bn = _bn(out_channels)
        self.relu = nn.ReLU(inplace=True)
        if not pool:
            self.pool: nn.Module = nn.Identity()
        elif kind == "dfb":
            self.pool = nn.MaxPool3d((3, 3, 3), (2, 2, 2), (1, 1, 1))
        else:
            self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


def _mixer(kind: str, channels: int, fold_div: int) -> nn.Module:
    if kind == "tsm":
        return TemporalShift(fold_div)
    if kind == "tam":
        return TemporalAggregation(channels)
    return nn.Identity()


def _gate(on: bool, channels: int) -> nn.Module:
    return FeatureGating(channels) if on else nn.Identity()


def _downsample(in_ch: int, out_ch: int, stride: int, t_stride: int) -> nn.Module | None:
    if stride == 1 and t_stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(
        nn.Conv3d(in_ch, out_ch, 1, stride=(t_stride, stride, stride), bias=False), _bn(out_ch)
    )


class BasicBlock(nn.Module):
    """Two 3×3 convs (both carry the temporal module), ResNet-18/34.

    ``[B, C_in, T, H, W] → [B, width, T/t_stride, H/stride, W/stride]``.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        t_stride: int = 1,
        kind: str = "none",
        gating: bool = False,
        expand: bool = False,
        fold_div: int = 8,
    ) -> None:
        super().__init__()
        conv_kind = kind in CONV_KINDS
        # TSM/TAM act on the residual branch only, so the identity path keeps every frame's own
        # features (TSM's "residual shift", Lin et al. §3.2).
        self.mixer = _mixer(kind, in_channels, fold_div)
        self.gate0 = _gate(gating and kind in MIXER_KINDS, in_channels)
        self.conv1 = spatiotemporal_conv(kind, in_channels, width, 3, stride, t_stride, 3, expand)
        self.bn1 = _bn(width)
        self.gate1 = _gate(gating and conv_kind, width)
        # like torchvision's r2plus1d_18, the second conv reuses the first's mid width
        mid = r2plus1d_midplanes(in_channels, width) if expand else None
        self.conv2 = spatiotemporal_conv(kind, width, width, 3, 1, 1, 3, expand, mid)
        self.bn2 = _bn(width)
        self.gate2 = _gate(gating and conv_kind, width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, width, stride, t_stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.gate0(self.mixer(x))
        out = self.gate1(self.relu(self.bn1(self.conv1(out))))
        out = self.gate2(self.bn2(self.conv2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (carries the temporal module, and the stride) → 1×1 (×4), ResNet-50/101/152.

    ``[B, C_in, T, H, W] → [B, 4·width, T/t_stride, H/stride, W/stride]``.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        t_stride: int = 1,
        kind: str = "none",
        gating: bool = False,
        expand: bool = False,
        fold_div: int = 8,
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.mixer = _mixer(kind, in_channels, fold_div)
        self.gate0 = _gate(gating and kind in MIXER_KINDS, in_channels)
        self.conv1 = nn.Conv3d(in_channels, width, 1, bias=False)
        self.bn1 = _bn(width)
        self.conv2 = spatiotemporal_conv(kind, width, width, 3, stride, t_stride, 3, expand)
        self.bn2 = _bn(width)
        self.gate2 = _gate(gating and kind in CONV_KINDS, width)
        self.conv3 = nn.Conv3d(width, out_channels, 1, bias=False)
        self.bn3 = _bn(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride, t_stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.gate0(self.mixer(x))
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.gate2(self.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _preact_shortcut(in_ch: int, out_ch: int, stride: int, t_stride: int) -> nn.Module | None:
    """He et al. 2016b: the projection shortcut is a bare conv on the pre-activated input."""
    if stride == 1 and t_stride == 1 and in_ch == out_ch:
        return None
    return nn.Conv3d(in_ch, out_ch, 1, stride=(t_stride, stride, stride), bias=False)


class PreActBasicBlock(BasicBlock):
    """``BasicBlock`` with pre-activation (He et al., "Identity mappings in deep residual
    networks", 2016; u2s §III-A, ref. [63]): BN → ReLU → conv, twice, and a clean identity path
    with nothing after the addition. Same arguments and convolutions as ``BasicBlock``; its BNs
    normalise each conv's input. ``[B, C_in, T, H, W] → [B, width, T/t_stride, H/s, W/s]``.
    """

    def __init__(self, in_channels: int, width: int, stride: int = 1, t_stride: int = 1,
                 **options: Any) -> None:
        super().__init__(in_channels, width, stride, t_stride, **options)
        self.bn1 = _bn(in_channels)
        self.downsample = _preact_shortcut(in_channels, width, stride, t_stride)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(pre)
        out = self.gate1(self.conv1(self.gate0(self.mixer(pre))))
        out = self.gate2(self.conv2(self.relu(self.bn2(out))))
        return out + identity


class PreActBottleneck(Bottleneck):
    """``Bottleneck`` with pre-activation (He et al. 2016b; u2s §III-A, ref. [63]): BN → ReLU
    → conv for the 1×1, the 3×3 (temporal module, stride) and the 1×1 (×4); nothing after the
    addition. ``[B, C_in, T, H, W] → [B, 4·width, T/t_stride, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, width: int, stride: int = 1, t_stride: int = 1,
                 **options: Any) -> None:
        super().__init__(in_channels, width, stride, t_stride, **options)
        self.bn1 = _bn(in_channels)
        self.bn3 = _bn(width)
        self.downsample = _preact_shortcut(in_channels, width * self.expansion, stride, t_stride)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(self.gate0(self.mixer(pre)))
        out = self.gate2(self.conv2(self.relu(self.bn2(out))))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + identity


class ResStage(nn.Module):
    """Optional temporal max-pool, then residual blocks, with non-local blocks after some (and,
    for the last stage of a pre-activation net, a final BN → ReLU).

    ``[B, C_in, T, H, W] → [B, C_out, T', H/stride, W/stride]``.
    """

    def __init__(
        self,
        blocks: list[nn.Module],
        temporal_pool: bool = False,
        non_local: Mapping[int, nn.Module] | None = None,
        final_norm: nn.Module | None = None,
    ) -> None:
        super().__init__()
        # 3×1×1 max-pool with stride 2 in time: the I3D-style temporal pooling that the
        # unified-analysis paper switches on and off (§6.1 "Temporal Pooling", Fig. 6).
        self.temporal_pool: nn.Module = (
            nn.MaxPool3d((3, 1, 1), (2, 1, 1), (1, 0, 0)) if temporal_pool else nn.Identity()
        )
        self.blocks = nn.ModuleList(blocks)
        self.non_local = nn.ModuleDict({str(i): m for i, m in (non_local or {}).items()})
        # a pre-activation net's last stage ends with BN → ReLU (He et al. 2016b), so the head
        # reads normalised, rectified features as after a post-activation stage
        self.final_norm = final_norm
        self.relu = nn.ReLU(inplace=True) if final_norm is not None else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.temporal_pool(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if str(i) in self.non_local:
                x = self.non_local[str(i)](x)
        if self.final_norm is not None and self.relu is not None:
            x = self.relu(self.final_norm(x))
        return x


@dataclass(frozen=True)
class _StagePlan:
    in_channels: int
    width: int
    blocks: int
    stride: int
    t_stride: int
    temporal_pool: bool
    kind: str


class VideoResNet(VideoBackbone):
    """ResNet-18/34/50/101/152 for video with a configurable temporal module per stage.

    ``forward(x: [B, C, T, H, W]) -> {"stage1": …, …, "stage5": …}``, every value
    ``[B, C_s, T_s, H_s, W_s]``: ``stage1`` is the stem (after its max-pool, H/4), ``stage2`` …
    ``stage5`` the residual stages (H/4, H/8, H/16, H/32). T is kept unless ``temporal_pooling``
    (T halved, rounding up, at the entry of stages 3, 4 and 5) or the ``dfb`` stem (T ÷ 4).
    Weights are loaded after construction (``models.create_backbone`` / ``models.video_resnet``
    with ``pretrained=``), never here.

    Args:
        depth: 18, 34, 50, 101 or 152.
        temporal: ``none | i3d | s3d | r2plus1d | tam | tsm`` (module table above).
        temporal_stages: ``"all" | "top_heavy" | "bottom_heavy"`` or a list of stage names;
            ``"stage1"`` means the stem conv is temporal (``i3d`` / ``s3d`` / ``r2plus1d`` only).
        temporal_pooling: halve T at stages 3–5 (unified-analysis §6.1 "-tp" models).
        temporal_downsample: ``"maxpool"`` (3×1×1 max-pool) or ``"stride"`` (temporal stride 2 on
            the first block's 3×3 conv and shortcut, like torchvision's ``r3d_18``).
        gating: S3D-G feature gating (S3D §4.6) after every temporal conv (after the temporal
            mixer for ``tam`` / ``tsm``).
        non_local_stages: stages that get non-local blocks after every other residual block
            (Wang et al.: 2 in res3 + 3 in res4 of ResNet-50 for ``["stage3", "stage4"]``).
        width_multiplier: scales every channel count (tiny nets for tests: 0.125).
        in_channels: input channels (3 for RGB, 2 for optical flow x/y, 2·L for TSN's stack of L
            flow fields).
        stem: ``"auto"`` (3d for i3d, separable for s3d / r2plus1d when the stem is a temporal
            stage, else 2d), ``"2d"``, ``"3d"``, ``"separable"`` or ``"dfb"``.
        stem_pool: keep the stem's max-pool (torchvision's r3d_18 / r2plus1d_18 have none).
        r2plus1d_expand: R(2+1)D mid width (Tran et al.) instead of the unified-analysis'
            no-expansion; applies to ``s3d`` / ``r2plus1d`` convs and the separable stem.
        fold_div: TSM shifts ``C/fold_div`` channels each way.
        preact: pre-activation blocks (BN → ReLU → conv; He et al. 2016b), the ResNet of the
            u2s paper (§III-A, ref. [63]); stage 5 then ends with BN → ReLU. torchvision has no
            such ImageNet weights: a pre-activation net loads only its own (Finegrain) weights.
    """

    def __init__(
        self,
        depth: Literal[18, 34, 50, 101, 152] = 50,
        temporal: str = "none",
        temporal_stages: str | Sequence[str] = "all",
        temporal_pooling: bool = False,
        temporal_downsample: Literal["maxpool", "stride"] = "maxpool",
        gating: bool = False,
        non_local_stages: Sequence[str] = (),
        width_multiplier: PositiveFloat = 1.0,
        in_channels: PositiveInt = 3,
        stem: StemKind = "auto",
        stem_pool: bool = True,
        r2plus1d_expand: bool = False,
        fold_div: int = 8,
        preact: bool = False,
    ) -> None:
        super().__init__(in_channels)
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth}")
        if temporal not in TEMPORAL_KINDS:
            raise ValueError(f"temporal must be one of {TEMPORAL_KINDS}, got {temporal!r}")
        if temporal_downsample not in ("maxpool", "stride"):
            raise ValueError(
                f"temporal_downsample must be 'maxpool' or 'stride', got {temporal_downsample!r}"
            )
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
        self.depth = depth
        self.temporal = temporal
        self.temporal_stages = resolve_stages(temporal_stages)
        self.temporal_pooling = temporal_pooling
        self.temporal_downsample = temporal_downsample
        self.gating = gating
        self.non_local_stages = (
            resolve_stages(non_local_stages) if non_local_stages else frozenset()
        )
        if "stage1" in self.non_local_stages:
            raise ValueError("non_local_stages may name stage2..stage5, not the stem")
        self.width_multiplier = width_multiplier
        self.r2plus1d_expand = r2plus1d_expand
        self.fold_div = fold_div
        self.stem_pool = stem_pool
        self.stem_kind = self._resolve_stem(stem)
        self.preact = preact
        self.block_type, self.layers = DEPTHS[depth]
        block = self._block_class()

        self.stem_channels = scaled(64, width_multiplier)
        self._plans: dict[str, _StagePlan] = {}
        channels = self.stem_channels
        self.out_channels["stage1"] = channels
        for i, (name, n_blocks) in enumerate(zip(STAGE_NAMES[1:], self.layers, strict=True)):
            width = scaled(64 * 2**i, width_multiplier)
            downsampling = i > 0  # stages 3–5 halve space; with temporal pooling, time too
            pool_t = temporal_pooling and downsampling
            self._plans[name] = _StagePlan(
                in_channels=channels,
                width=width,
                blocks=n_blocks,
                stride=2 if downsampling else 1,
                t_stride=2 if pool_t and temporal_downsample == "stride" else 1,
                temporal_pool=pool_t and temporal_downsample == "maxpool",
                kind=temporal if name in self.temporal_stages else "none",
            )
            channels = width * block.expansion
            self.out_channels[name] = channels
        self.build_stages()

    # -- construction -------------------------------------------------------------------------

    def _block_class(self) -> type[nn.Module]:
        if self.block_type == "bottleneck":
            return PreActBottleneck if self.preact else Bottleneck
        return PreActBasicBlock if self.preact else BasicBlock

    def _resolve_stem(self, stem: str) -> str:
        if stem != "auto":
            return stem
        if self.temporal in CONV_KINDS and "stage1" in self.temporal_stages:
            return "3d" if self.temporal == "i3d" else "separable"
        return "2d"

    def stage_stride(self, name: str) -> tuple[int, int]:
        if name == "stage1":
            time = 4 if self.stem_kind == "dfb" else 1
            return time, 4 if self.stem_pool else 2
        plan = self._plans[name]
        return (2 if plan.t_stride > 1 or plan.temporal_pool else 1), plan.stride

    def make_stage(self, name: str) -> nn.Module:
        """A freshly initialised stage ``name`` of this configuration."""
        if name == "stage1":
            mid = None
            if self.stem_kind == "separable" and self.r2plus1d_expand:
                # torchvision's R2Plus1dStem: 3 → 45 → 64
                mid = scaled(45, self.width_multiplier)
            stage: nn.Module = Stem(
                self.stem_kind, self.in_channels, self.stem_channels, self.stem_pool, mid
            )
        elif name in self._plans:
            plan = self._plans[name]
            block = self._block_class()
            blocks: list[nn.Module] = []
            channels = plan.in_channels
            for j in range(plan.blocks):
                blocks.append(
                    block(
                        channels,
                        plan.width,
                        stride=plan.stride if j == 0 else 1,
                        t_stride=plan.t_stride if j == 0 else 1,
                        kind=plan.kind,
                        gating=self.gating,
                        expand=self.r2plus1d_expand,
                        fold_div=self.fold_div,
                    )
                )
                channels = plan.width * block.expansion
            non_local = {}
            if name in self.non_local_stages:
                # every other block, counting from the second (Wang et al. §4.1)
                non_local = {j: NonLocalBlock(channels) for j in range(1, plan.blocks, 2)}
                if not non_local:
                    non_local = {0: NonLocalBlock(channels)}
            final = _bn(channels) if self.preact and name == self.stage_names[-1] else None
            stage = ResStage(blocks, plan.temporal_pool, non_local, final)
        else:
            raise KeyError(f"unknown stage {name!r}; stages are {STAGE_NAMES}")
        init_weights(stage)
        return stage

    @property
    def is_2d(self) -> bool:
        """Every frame is processed alone (TSN / I2D): no temporal module, temporal pooling,
        non-local block or temporal stem, so stage ``t`` of every feature map depends on input
        frame ``t`` only. Heads that score frames independently (TSN consensus) ask for it."""
        return (self.temporal == "none" and not self.temporal_pooling
                and not self.non_local_stages and self.stem_kind == "2d")

    # -- where weights come from (models.weights) ------------------------------------------------

    @property
    def imagenet_arch(self) -> str | None:
        """torchvision's ImageNet model of this depth (``pretrained="imagenet"``); none for a
        pre-activation net."""
        return None if self.preact else f"resnet{self.depth}"

    @property
    def weight_formats(self) -> tuple[str, ...]:
        # torchvision's ResNets are post-activation: their BN sits elsewhere
        if self.preact:
            return ("Finegrain VideoResNet",)
        return ("torchvision ResNet", "torchvision video ResNet", "Finegrain VideoResNet")


# -- key maps: VideoResNet key → the source's key (None: no counterpart) ---------------------------

_RESNET2D_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^stage1\.conv(?:\.spatial)?\.weight$"), "conv1.weight"),
    (re.compile(r"^stage1\.bn\.(.+)$"), r"bn1.\1"),
    (
        re.compile(r"^stage(\d)\.blocks\.(\d+)\.(conv\d)(?:\.spatial)?\.weight$"),
        r"layer{L}.\2.\3.weight",
    ),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.(bn\d)\.(.+)$"), r"layer{L}.\2.\3.\4"),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.downsample\.(.+)$"), r"layer{L}.\2.downsample.\3"),
]

# torchvision.models.video: BasicStem = (conv, bn, relu); R2Plus1dStem = (conv 1×7×7, bn, relu,
# conv 3×1×1, bn, relu); a block's conv{n} = (conv_builder, bn[, relu]) where Conv2Plus1D is
# (conv 1×3×3, bn, relu, conv 3×1×1)
_VIDEO_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.(conv\d)\.weight$"), r"layer{L}.\2.\3.0.weight"),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.(conv\d)\.spatial\.weight$"),
     r"layer{L}.\2.\3.0.0.weight"),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.(conv\d)\.bn\.(.+)$"), r"layer{L}.\2.\3.0.1.\4"),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.(conv\d)\.temporal\.weight$"),
     r"layer{L}.\2.\3.0.3.weight"),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.bn(\d)\.(.+)$"), r"layer{L}.\2.conv\3.1.\4"),
    (re.compile(r"^stage(\d)\.blocks\.(\d+)\.downsample\.(.+)$"), r"layer{L}.\2.downsample.\3"),
    (re.compile(r"^stage1\.conv\.weight$"), "stem.0.weight"),
    (re.compile(r"^stage1\.conv\.spatial\.weight$"), "stem.0.weight"),
    (re.compile(r"^stage1\.conv\.bn\.(.+)$"), r"stem.1.\1"),
    (re.compile(r"^stage1\.conv\.temporal\.weight$"), "stem.3.weight"),
]


def _apply(patterns: list[tuple[re.Pattern, str]], key: str) -> str | None:
    for pattern, template in patterns:
        m = pattern.match(key)
        if m:
            if "{L}" in template:  # our stage k is torchvision's layer k-1
                template = template.replace("{L}", str(int(m.group(1)) - 1))
            return m.expand(template)
    return None


def resnet_key_map(key: str, model: nn.Module | None = None) -> str | None:
    """``VideoResNet`` key → torchvision 2D ``ResNet`` key (stage k ↔ ``layer{k-1}``), or ``None``
    for parameters a 2D ResNet lacks (temporal convs, gating, TAM, non-local)."""
    return _apply(_RESNET2D_PATTERNS, key)


def video_resnet_key_map(key: str, model: nn.Module | None = None) -> str | None:
    """``VideoResNet`` key → ``torchvision.models.video`` ResNet key (``r3d_18``, ``mc3_18``,
    ``r2plus1d_18``). The stem BN is ``stem.1`` after a plain conv, ``stem.4`` after the (2+1)D
    stem's two convs."""
    m = re.match(r"^stage1\.bn\.(.+)$", key)
    if m:
        separable = model is not None and getattr(model, "stem_kind", "") == "separable"
        return f"stem.{4 if separable else 1}.{m.group(1)}"
    return _apply(_VIDEO_PATTERNS, key)


def _looks_like_resnet2d(state: Mapping) -> bool:
    first = state.get("layer1.0.conv1.weight")
    return "conv1.weight" in state and first is not None and first.dim() == 4


def _looks_like_video_resnet(state: Mapping) -> bool:
    return "stem.0.weight" in state and any(k.startswith("layer1.0.conv1.0.") for k in state)


def _looks_like_finegrain_resnet(state: Mapping) -> bool:
    return any(k.startswith("stage2.blocks.0.") for k in state)


register_format(WeightFormat(
    "torchvision ResNet", "a torchvision 2D ResNet state dict (resnet18 … resnet152, ImageNet)",
    _looks_like_resnet2d, resnet_key_map, inflate=True, classifier=("fc",)))
register_format(WeightFormat(
    "torchvision video ResNet",
    "a torchvision video ResNet state dict (r3d_18, mc3_18, r2plus1d_18)",
    _looks_like_video_resnet, video_resnet_key_map, classifier=("fc",)))
register_format(WeightFormat(
    "Finegrain VideoResNet", "a Finegrain VideoResNet backbone (checkpoint or state dict)",
    _looks_like_finegrain_resnet, None))
