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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

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

STAGE_NAMES: tuple[str, ...] = ("stage1", "stage2", "stage3", "stage4", "stage5")

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


class ResStage(nn.Module):
    """Optional temporal max-pool, then residual blocks, with non-local blocks after some.

    ``[B, C_in, T, H, W] → [B, C_out, T', H/stride, W/stride]``.
    """

    def __init__(
        self,
        blocks: list[nn.Module],
        temporal_pool: bool = False,
        non_local: Mapping[int, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        # 3×1×1 max-pool with stride 2 in time: the I3D-style temporal pooling that the
        # unified-analysis paper switches on and off (§6.1 "Temporal Pooling", Fig. 6).
        self.temporal_pool: nn.Module = (
            nn.MaxPool3d((3, 1, 1), (2, 1, 1), (1, 0, 0)) if temporal_pool else nn.Identity()
        )
        self.blocks = nn.ModuleList(blocks)
        self.non_local = nn.ModuleDict({str(i): m for i, m in (non_local or {}).items()})

    def forward(self, x: Tensor) -> Tensor:
        x = self.temporal_pool(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if str(i) in self.non_local:
                x = self.non_local[str(i)](x)
        return x


class StageSequence(nn.Module):
    """A run of consecutive stages (a fresh copy from ``copy_stages``): 5-D in, 5-D out."""

    def __init__(self, stages: Mapping[str, nn.Module], out_channels: Mapping[str, int]) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(dict(stages))
        self.stage_names = tuple(stages)
        self.out_channels = {k: out_channels[k] for k in self.stage_names}

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, T, H, W]`` entering the first stage → output of the last stage."""
        for stage in self.stages.values():
            x = stage(x)
        return x


def init_weights(module: nn.Module) -> None:
    """He init for convs, BN to (1, 0), linear N(0, 0.01); then modules' own special inits."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        reset = getattr(m, "reset_parameters", None)
        if isinstance(m, (TemporalAggregation, NonLocalBlock)) and reset is not None:
            reset()


@dataclass(frozen=True)
class _StagePlan:
    in_channels: int
    width: int
    blocks: int
    stride: int
    t_stride: int
    temporal_pool: bool
    kind: str


class VideoResNet(nn.Module):
    """ResNet-18/34/50/101/152 for video with a configurable temporal module per stage.

    ``forward(x: [B, C, T, H, W]) -> {"stage1": …, …, "stage5": …}``, every value
    ``[B, C_s, T_s, H_s, W_s]``: ``stage1`` is the stem (after its max-pool, H/4), ``stage2`` …
    ``stage5`` the residual stages (H/4, H/8, H/16, H/32). T is kept unless ``temporal_pooling``
    (T halved, rounding up, at the entry of stages 3, 4 and 5) or the ``dfb`` stem (T ÷ 4).

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
        in_channels: input channels (3 for RGB).
        stem: ``"auto"`` (3d for i3d, separable for s3d / r2plus1d when the stem is a temporal
            stage, else 2d), ``"2d"``, ``"3d"``, ``"separable"`` or ``"dfb"``.
        stem_pool: keep the stem's max-pool (torchvision's r3d_18 / r2plus1d_18 have none).
        r2plus1d_expand: R(2+1)D mid width (Tran et al.) instead of the unified-analysis'
            no-expansion; applies to ``s3d`` / ``r2plus1d`` convs and the separable stem.
        fold_div: TSM shifts ``C/fold_div`` channels each way.
        pretrained: ``None``, ``"imagenet"`` (torchvision weights; needs internet), a path to a
            torchvision ResNet state dict, or the state dict itself.
        inflate: ``"mean"`` or ``"center"`` (see ``models.inflation``).
    """

    def __init__(
        self,
        depth: int = 50,
        temporal: str = "none",
        temporal_stages: str | Sequence[str] = "all",
        temporal_pooling: bool = False,
        temporal_downsample: Literal["maxpool", "stride"] = "maxpool",
        gating: bool = False,
        non_local_stages: Sequence[str] = (),
        width_multiplier: float = 1.0,
        in_channels: int = 3,
        stem: StemKind = "auto",
        stem_pool: bool = True,
        r2plus1d_expand: bool = False,
        fold_div: int = 8,
        pretrained: str | dict | None = None,
        inflate: Literal["mean", "center"] = "mean",
    ) -> None:
        super().__init__()
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
        if inflate not in ("mean", "center"):
            raise ValueError(f"inflate must be 'mean' or 'center', got {inflate!r}")
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
        self.in_channels = in_channels
        self.r2plus1d_expand = r2plus1d_expand
        self.fold_div = fold_div
        self.stem_pool = stem_pool
        self.stem_kind = self._resolve_stem(stem)
        self.block_type, self.layers = DEPTHS[depth]
        block = Bottleneck if self.block_type == "bottleneck" else BasicBlock

        self.stem_channels = self._scale(64)
        self._plans: dict[str, _StagePlan] = {}
        channels = self.stem_channels
        self.out_channels: dict[str, int] = {"stage1": channels}
        for i, (name, n_blocks) in enumerate(zip(STAGE_NAMES[1:], self.layers, strict=True)):
            width = self._scale(64 * 2**i)
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
        self.stage_names: tuple[str, ...] = STAGE_NAMES
        for name in STAGE_NAMES:
            self.add_module(name, self._make_stage(name))

        if pretrained is not None:
            from models.inflation import load_resnet2d  # local: inflation imports this module

            load_resnet2d(self, pretrained, inflate=inflate)

    # -- construction -------------------------------------------------------------------------

    def _scale(self, channels: int) -> int:
        return max(1, int(round(channels * self.width_multiplier)))

    def _resolve_stem(self, stem: str) -> str:
        if stem != "auto":
            return stem
        if self.temporal in CONV_KINDS and "stage1" in self.temporal_stages:
            return "3d" if self.temporal == "i3d" else "separable"
        return "2d"

    def _make_stage(self, name: str) -> nn.Module:
        """A freshly initialised stage ``name`` of this configuration."""
        if name == "stage1":
            mid = None
            if self.stem_kind == "separable" and self.r2plus1d_expand:
                mid = self._scale(45)  # torchvision's R2Plus1dStem: 3 → 45 → 64
            stage: nn.Module = Stem(
                self.stem_kind, self.in_channels, self.stem_channels, self.stem_pool, mid
            )
        elif name in self._plans:
            plan = self._plans[name]
            block = Bottleneck if self.block_type == "bottleneck" else BasicBlock
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
            stage = ResStage(blocks, plan.temporal_pool, non_local)
        else:
            raise KeyError(f"unknown stage {name!r}; stages are {STAGE_NAMES}")
        init_weights(stage)
        return stage

    # -- contract -----------------------------------------------------------------------------

    @property
    def is_2d(self) -> bool:
        """Every frame is processed alone (TSN / I2D): no temporal module, temporal pooling,
        non-local block or temporal stem, so stage ``t`` of every feature map depends on input
        frame ``t`` only. Heads that score frames independently (TSN consensus) ask for it."""
        return (self.temporal == "none" and not self.temporal_pooling
                and not self.non_local_stages and self.stem_kind == "2d")

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``[B, C, T, H, W]`` → ``{stage name: [B, C_s, T_s, H_s, W_s]}``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"VideoResNet expects [B, {self.in_channels}, T, H, W], got {tuple(x.shape)}"
            )
        features: dict[str, Tensor] = {}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            features[name] = x
        return features

    def copy_stages(self, first: str, last: str = "stage5") -> StageSequence:
        """Fresh, randomly initialised stages ``first..last`` of the same configuration.

        The returned module maps the tensor that enters ``first`` (the previous stage's output,
        ``[B, C, T, H, W]``) to ``last``'s output. Weights are new, never shared.
        """
        names = _stage_range(self.stage_names, first, last)
        return StageSequence({n: self._make_stage(n) for n in names}, self.out_channels)


def _stage_range(names: Sequence[str], first: str, last: str) -> tuple[str, ...]:
    for n in (first, last):
        if n not in names:
            raise KeyError(f"unknown stage {n!r}; stages are {tuple(names)}")
    i, j = names.index(first), names.index(last)
    if i > j:
        raise ValueError(f"first stage {first!r} comes after last stage {last!r}")
    return tuple(names[i : j + 1])
