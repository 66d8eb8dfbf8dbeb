"""What every video backbone shares: the five named stages, the stage loop, ``copy_stages``,
input checks and ``feature_info``.

A backbone maps ``[B, C_in, T, H, W]`` to ``{"stage1": …, …, "stage5": …}`` (every value 5-D);
``stage1`` is the stem, ``stage5`` the last stage. Heads read ``out_channels`` / ``feature_info``
and may ask for a fresh copy of the top stages (``copy_stages``), never caring which network it is.
Subclasses (``VideoResNet``, ``InceptionV1Video``) only say how to build one stage and how much it
downsamples; weights are loaded from outside, after construction (``models.weights``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from models.temporal import NonLocalBlock, TemporalAggregation

STAGE_NAMES: tuple[str, ...] = ("stage1", "stage2", "stage3", "stage4", "stage5")


@dataclass(frozen=True)
class FeatureInfo:
    """One stage's output: ``channels``, and its ``stride`` (space) / ``temporal_stride`` (time)
    relative to the input — nominal factors: ceil-mode pools round sizes up."""

    name: str
    channels: int
    stride: int
    temporal_stride: int


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


def stage_range(names: Sequence[str], first: str, last: str) -> tuple[str, ...]:
    """The stage names ``first..last`` (inclusive) of ``names``."""
    for n in (first, last):
        if n not in names:
            raise KeyError(f"unknown stage {n!r}; stages are {tuple(names)}")
    i, j = names.index(first), names.index(last)
    if i > j:
        raise ValueError(f"first stage {first!r} comes after last stage {last!r}")
    return tuple(names[i : j + 1])


def init_weights(module: nn.Module) -> None:
    """He init for convs, BN to (1, 0), linear N(0, 0.01); then modules' own special inits
    (TAM's identity, the non-local block's zero BN)."""
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
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, (TemporalAggregation, NonLocalBlock)):
            m.reset_parameters()


def scaled(channels: int, width_multiplier: float) -> int:
    """``channels · width_multiplier``, rounded, at least 1."""
    return max(1, int(round(channels * width_multiplier)))


class VideoBackbone(nn.Module):
    """Base of the video backbones: stages ``stage_names`` built by ``make_stage``.

    Subclasses call ``super().__init__(in_channels)``, set what ``make_stage`` needs, then
    ``build_stages()``; they implement ``make_stage(name)`` (a freshly initialised stage, recording
    ``out_channels[name]``) and ``stage_stride(name)`` (its own ``(time, space)`` downsampling).

    ``forward(x: [B, in_channels, T, H, W]) -> {stage name: [B, C_s, T_s, H_s, W_s]}``.
    """

    stage_names: tuple[str, ...] = STAGE_NAMES

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        #: input channels: 3 for RGB, 2 for a 3D net on optical flow (x, y), 2·L for TSN's stack
        #: of L flow fields
        self.in_channels = in_channels
        self.out_channels: dict[str, int] = {}

    # -- what a subclass provides ---------------------------------------------------------------

    def make_stage(self, name: str) -> nn.Module:
        """A freshly, randomly initialised stage ``name`` of this configuration."""
        raise NotImplementedError

    def stage_stride(self, name: str) -> tuple[int, int]:
        """``(temporal, spatial)`` downsampling of stage ``name`` alone."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------

    def build_stages(self) -> None:
        for name in self.stage_names:
            self.add_module(name, self.make_stage(name))

    @property
    def is_2d(self) -> bool:
        """Every frame is processed alone (a TSN / I2D): stage ``t`` of each feature map depends
        on input frame ``t`` only. The one thing a head may ask beyond stages and channels
        (``DFBHead`` scores a 2D net per frame); subclasses say when. Default: ``False``."""
        return False

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """Channels and cumulative (space, time) stride of every stage's output, in order."""
        info, t, s = [], 1, 1
        for name in self.stage_names:
            dt, ds = self.stage_stride(name)
            t, s = t * dt, s * ds
            info.append(FeatureInfo(name, self.out_channels[name], s, t))
        return info

    def check_input(self, x: Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects [B, {self.in_channels}, T, H, W], "
                f"got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``[B, C, T, H, W]`` → ``{stage name: [B, C_s, T_s, H_s, W_s]}``."""
        self.check_input(x)
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
        names = stage_range(self.stage_names, first, last)
        return StageSequence({n: self.make_stage(n) for n in names}, self.out_channels)
