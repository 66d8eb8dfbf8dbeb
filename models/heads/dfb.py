"""Discriminative filter bank head (Martínez et al., "Action recognition with spatial-temporal
discriminative filter banks", dfb paper in ``papers/``).

Three branches over the backbone's features (dfb §3, Fig. 2):

* global branch ``avg`` (§3.1): average pool of ``stage5`` over T×H×W, dropout, dense → ``z_avg``;
* discriminative filter bank (§3.2): ``C·N`` 1×1×1 convolutions, global max over T×H×W;
  ``xchannel`` = mean of each class's N max responses (cross-channel pooling), ``max`` = a dense
  layer over all ``C·N`` responses; ``comb = avg + xchannel + max``;
* local detail branch (§3.3): a fresh copy of stage 5 applied to ``stage4``, upsampled ×2 over
  space back to stage 4's resolution and concatenated with ``stage4`` (skip connection); the
  filter bank reads this volume instead of ``stage5``.

Loss (eq. 1): ``L = L_comb + L_avg + L_max + L_xchannel``.

On a 2D backbone (``backbone.is_2d``: TSN, dfb §3.2 / §4.2) the head runs on every frame alone —
each frame is an image, its filter-bank max spans that frame's H×W — and every branch's scores
are averaged over the frames (TSN's average consensus). So training on 3 segments and testing on
20 changes only how many frames are averaged, never what a max spans, and the 20-segment ×
10-crop test is 200 independent views. On a 3D backbone the max spans the clip's T×H×W.
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange, reduce, repeat
from jsonargparse.typing import PositiveInt
from torch import Tensor, nn
from torch.nn import functional as F

from models.heads.base import DropoutRate, Head, HeadOutput, load_backbone_stage_weights


class DFBHead(Head):
    """Global branch + discriminative filter bank + optional local detail branch (dfb §3).

    ``local_branch=False`` is the paper's GB+DF ablation (filters on ``stage5``, dfb Table 1);
    :class:`~models.heads.gap.GAPHead` is GB.

    The filter bank is mathematically a 1×1×1 convolution over
    ``cat(stage4, up(local_stage5(stage4)))`` followed by a global max, but it is *computed* as

    ``max_thw( W4 · stage4 + up(W5 · local) ) + b``

    because a 1×1×1 convolution acts on channels only and the (tri)linear upsampling acts on
    positions only, so they commute: ``W5 · up(f) = up(W5 · f)``. Projecting the local features
    at stage 5's resolution (¼ of stage 4's positions) halves the filter bank's multiply-adds,
    the 3072-channel concatenation is never materialised, the bias is added to ``C·N`` maxima
    instead of every position, and one ``max`` pass yields both the responses and their
    ``(t, y, x)`` argmax for visualisation.

    Args:
        backbone: exposes ``out_channels`` and, with ``local_branch``, ``copy_stages``.
        num_classes: ``C``.
        filters_per_class: ``N`` discriminative filters per class (5 in dfb §3.2).
        local_branch: add the local detail branch (dfb §3.3).
        dropout: dropout before the global branch's classifier (0.5 in dfb §4.2).
        local_init: ``"random"`` (fresh initialisation; dfb §4.2 found it consistently better,
            and it is the paper's setting for all results) or ``"backbone"`` (start from a copy of
            the backbone's current stage-5 weights, the other choice §4.2 discusses).
        global_stage: stage feeding the global branch.
        local_stage: stage the local branch starts from and that is concatenated as skip.

    On a 2D backbone (``per_frame``, from ``backbone.is_2d``) every branch's ``[B, C]`` scores
    are the mean over frames of each frame's own scores (see the module docstring); the extras
    then give each filter's strongest frame (``t``) and its ``(y, x)`` in that frame.

    Forward input: the backbone's stage dict (``[B, C_s, T, H, W]`` per stage).
    Output logits: ``avg``, ``xchannel``, ``max``, ``comb``, each ``[B, num_classes]``; final
    ``comb``. Extras: ``filter_response`` ``[B, C·N]`` (max response of each filter, after bias)
    and ``filter_location`` ``[B, C·N, 3]`` long, the ``(t, y, x)`` of that maximum in the filter
    bank's feature volume (stage 4's grid with the local branch, else stage 5's). Filter ``k``
    belongs to class ``k // N``.
    """

    loss_branches = ("comb", "avg", "max", "xchannel")
    classifier_layers = ("fc_avg", "fc_max", "filters_main", "filters_skip", "filters_bias")
    source_classifier = "fc_avg"

    @property
    def branches(self) -> tuple[str, ...]:
        return ("avg", "xchannel", "max", "comb")

    @property
    def final_branch(self) -> str:
        return "comb"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        filters_per_class: PositiveInt = 5,
        local_branch: bool = True,
        dropout: DropoutRate = 0.5,
        local_init: Literal["random", "backbone"] = "random",
        global_stage: str = "stage5",
        local_stage: str = "stage4",
    ) -> None:
        super().__init__(num_classes)
        if filters_per_class < 1:
            raise ValueError(f"filters_per_class must be >= 1, got {filters_per_class}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if local_init not in ("random", "backbone"):
            raise ValueError(f"local_init must be 'random' or 'backbone', got {local_init!r}")
        channels: dict[str, int] = dict(backbone.out_channels)
        for stage in (global_stage, local_stage) if local_branch else (global_stage,):
            if stage not in channels:
                raise ValueError(f"backbone has no stage {stage!r}; it has {sorted(channels)}")

        self.filters_per_class = filters_per_class
        #: score every frame alone and average (TSN consensus, dfb §3.2 / §4.2) on 2D backbones
        self.per_frame = bool(getattr(backbone, "is_2d", False))
        self.local_branch = local_branch
        self.global_stage = global_stage
        self.local_stage = local_stage
        num_filters = num_classes * filters_per_class
        global_channels = channels[global_stage]

        # global branch (§3.1)
        self.dropout = nn.Dropout(dropout)
        self.fc_avg = nn.Linear(global_channels, num_classes)

        if local_branch:
            # §3.3 / §4.2: a separate stage-5 copy, randomly initialised by default
            self.local = backbone.copy_stages(global_stage, global_stage)
            self.local_init = local_init
            if local_init == "backbone":
                load_backbone_stage_weights(backbone, self.local)
            skip_channels = channels[local_stage]
            # filter weights split as [W4 | W5] over the concatenated channels (skip first)
            self.filters_skip: nn.Parameter | None = nn.Parameter(
                torch.empty(num_filters, skip_channels)
            )
        else:
            self.local = None
            skip_channels = 0
            self.filters_skip = None
        self.filters_main = nn.Parameter(torch.empty(num_filters, global_channels))
        self.filters_bias = nn.Parameter(torch.zeros(num_filters))
        # §3.2: the dense layer over all C·N max responses
        self.fc_max = nn.Linear(num_filters, num_classes)
        self._reset_head_parameters(skip_channels + global_channels)

    def backbone_copies(self) -> dict[str, nn.Module]:
        return {"local": self.local} if getattr(self, "local_init", "") == "backbone" else {}

    def _reset_head_parameters(self, filter_fan_in: int) -> None:
        # Same init as GAPHead's classifier for the dense layers. The filters get the default
        # Conv init (kaiming-uniform, a=√5) over their *total* fan-in, as one nn.Conv3d over the
        # concatenated volume would — splitting the weight must not change the init scale.
        for fc in (self.fc_avg, self.fc_max):
            nn.init.normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)
        bound = 1.0 / filter_fan_in**0.5
        for weight in (self.filters_main, self.filters_skip):
            if weight is not None:
                nn.init.uniform_(weight, -bound, bound)
        nn.init.zeros_(self.filters_bias)

    @property
    def filter_weight(self) -> Tensor:
        """The filter bank as one 1×1×1 conv weight ``[C·N, C_in]`` over ``cat(skip, local)``."""
        if self.filters_skip is None:
            return self.filters_main
        return torch.cat([self.filters_skip, self.filters_main], dim=1)

    def filter_bank(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor, tuple[int, ...]]:
        """Max response of every filter and where it occurs.

        Returns ``(response [B, C·N], flat_index [B, C·N], grid (T, H, W))``.
        """
        if self.local is None:
            volume = features[self.global_stage]  # [B, D5, T, H, W]
            grid = tuple(volume.shape[2:])
            scores = torch.einsum("kd,bdl->bkl", self.filters_main, volume.flatten(2))
        else:
            skip = features[self.local_stage]  # [B, D4, T, H4, W4]
            local = self.local(skip)  # [B, D5, T', H4/2, W4/2]
            grid = tuple(skip.shape[2:])
            # project first, then upsample the C·N projected maps (see class docstring)
            projected = torch.einsum("kd,bdthw->bkthw", self.filters_main, local)
            if tuple(projected.shape[2:]) != grid:
                # ×2 over space; T is only resampled if the copied stage pooled time
                projected = F.interpolate(
                    projected, size=grid, mode="trilinear", align_corners=False
                )
            scores = torch.einsum("kd,bdl->bkl", self.filters_skip, skip.flatten(2))
            # in place: neither the matmul's nor the upsampling's backward needs its output
            scores = scores.add_(projected.flatten(2))
        response, flat_index = scores.max(dim=2)  # global max over T×H×W, one pass
        return response + self.filters_bias, flat_index, grid

    def forward(self, features: dict[str, Tensor]) -> HeadOutput:
        """Stage dict → ``HeadOutput`` with ``avg``/``xchannel``/``max``/``comb`` ``[B, C]``.

        On a 2D backbone (``per_frame``) every frame is scored alone and the scores averaged
        over frames (TSN consensus); otherwise the filter bank's max spans all of T×H×W.
        """
        if not self.per_frame:
            return self._score(features)
        frames = features[self.global_stage].shape[2]
        stages = (self.global_stage, self.local_stage) if self.local_branch else (
            self.global_stage,)
        folded = {name: rearrange(features[name], "b c t h w -> (b t) c 1 h w")
                  for name in stages}
        output = self._score(folded)
        logits = {branch: reduce(z, "(b t) k -> b k", "mean", t=frames)
                  for branch, z in output.logits.items()}
        # for the visualisers: each filter's strongest frame and where in it the filter fired
        response = rearrange(output.extras["filter_response"], "(b t) f -> b t f", t=frames)
        location = rearrange(output.extras["filter_location"], "(b t) f d -> b t f d",
                             t=frames)
        response, frame = response.max(dim=1)  # [B, C·N]
        location = location.gather(1, repeat(frame, "b f -> b 1 f d", d=3)).squeeze(1)
        location[..., 0] = frame
        return HeadOutput(logits=logits, final=self.final_branch,
                          extras={"filter_response": response, "filter_location": location})

    def _score(self, features: dict[str, Tensor]) -> HeadOutput:
        """One score per clip, the filter bank's max over the clip's whole T×H×W volume."""
        pooled = reduce(features[self.global_stage], "b d t h w -> b d", "mean")
        z_avg = self.fc_avg(self.dropout(pooled))

        response, flat_index, grid = self.filter_bank(features)
        # cross-channel pooling (§3.2): filter k belongs to class k // N
        z_xchannel = reduce(response, "b (c n) -> b c", "mean", n=self.filters_per_class)
        z_max = self.fc_max(response)
        z_comb = z_avg + z_xchannel + z_max

        location = torch.stack(torch.unravel_index(flat_index, grid), dim=-1)  # [B, C·N, 3]
        return HeadOutput(
            logits={"avg": z_avg, "xchannel": z_xchannel, "max": z_max, "comb": z_comb},
            final=self.final_branch,
            extras={"filter_response": response.detach(), "filter_location": location},
        )


__all__ = ["DFBHead"]
