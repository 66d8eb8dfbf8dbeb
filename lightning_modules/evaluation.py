"""Multi-view evaluation: fold views into the batch, average per video, count each video once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor

from lightning_modules.metrics import score

Average = Literal["prob", "score", "max"]


def average_views(logits: Tensor, how: Average = "prob") -> Tensor:
    """Combine the views of each video.

    Args:
        logits: ``[B, V, K]`` per-view logits.
        how: ``"prob"`` mean of softmax probabilities (default), ``"score"`` mean of logits,
            ``"max"`` element-wise max of probabilities.

    Returns:
        ``[B, K]`` per-video scores (probabilities for ``prob``/``max``, logits for ``score``).
    """
    if how == "prob":
        return logits.softmax(-1).mean(1)
    if how == "score":
        return logits.mean(1)
    if how == "max":
        return logits.softmax(-1).amax(1)
    raise ValueError(f"test_average must be 'prob', 'score' or 'max', got {how!r}")


def unique_by_index(index: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
    """Keep the first occurrence of every dataset index (undoes DistributedSampler padding).

    Returns ``(index, *values)`` sorted by index, one row per distinct video.
    """
    order = torch.argsort(index, stable=True)
    index = index[order]
    keep = torch.ones_like(index, dtype=torch.bool)
    keep[1:] = index[1:] != index[:-1]
    return (index[keep], *(value[order][keep] for value in values))


def gather_variable(module: Any, tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` ``[N, ...]`` from every rank, in rank order (N may differ).

    ``module`` is a LightningModule attached to a trainer (its ``all_gather`` is used). A
    collective call: every rank must call it, with tensors of the same trailing shape and dtype.
    Single-process runs get ``tensor`` back unchanged.
    """
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size == 1:
        return tensor
    sizes = module.all_gather(torch.tensor(tensor.shape[0], device=tensor.device))
    # all_gather needs equal shapes on every rank: pad to the largest, cut the padding off after
    padded = torch.zeros((int(sizes.max()), *tensor.shape[1:]), dtype=tensor.dtype,
                         device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    everything = module.all_gather(padded)  # [world, max_n, ...]
    return torch.cat([everything[r, : int(n)] for r, n in enumerate(sizes)])


def share_row_layout(module: Any, rows: dict[str, Tensor]) -> dict[str, Tensor]:
    """``rows`` (``{key: [N, ...]}``), or, on a rank that has none, empty ``[0, ...]`` tensors
    laid out like the first rank's that has some (same keys, trailing shapes and dtypes).

    Under DDP a rank whose evaluation batches were all unreadable appended nothing, yet must
    take part in :func:`gather_variable` with the others' layout. A collective call (every rank
    makes it); ``{}`` on every rank when no rank has rows; single-process runs get ``rows``
    back unchanged.
    """
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size == 1:
        return rows
    device = module.device
    has_rows = module.all_gather(torch.tensor(int(bool(rows)), device=device))  # [world]
    if not has_rows.any():
        return {}
    source = int(has_rows.nonzero()[0, 0])
    layout = trainer.strategy.broadcast(
        [(key, tuple(value.shape[1:]), value.dtype) for key, value in rows.items()], src=source)
    if rows:
        return rows
    return {key: torch.zeros((0, *shape), dtype=dtype, device=device)
            for key, shape, dtype in layout}


class ResultAccumulator:
    """Per-batch evaluation outputs, gathered once over ranks into one row per distinct video.

    The one place where test, predict and the analysis callbacks collect what they score: each
    batch appends its dataset ``index`` ``[B]`` and any named tensors ``[B, ...]`` (a mapping
    ``{branch: tensor}`` is stored per branch as ``"<name>/<branch>"``); :meth:`gather`
    concatenates every rank's rows (:func:`gather_variable`) and keeps one row per dataset index
    (:func:`unique_by_index`), so the DistributedSampler's padding never counts a video twice.
    """

    def __init__(self) -> None:
        self._parts: dict[str, list[Tensor]] = defaultdict(list)
        self._rows: dict[str, Tensor] | None = None

    def reset(self) -> None:
        """Forget the epoch's batches and its gathered rows (call at epoch start)."""
        self._parts.clear()
        self._rows = None

    def append(self, index: Tensor, **values: Tensor | Mapping[str, Tensor]) -> None:
        """Add one batch: ``index`` ``[B]`` and ``values`` (``[B, ...]`` or per-branch dicts)."""
        if self._rows is not None:
            raise RuntimeError("results were already gathered this epoch; reset() first")
        self._parts["index"].append(index.detach())
        for name, value in values.items():
            items = value.items() if isinstance(value, Mapping) else [(None, value)]
            for branch, tensor in items:
                key = name if branch is None else f"{name}/{branch}"
                self._parts[key].append(tensor.detach())

    def gather(self, module: Any) -> dict[str, Tensor]:
        """``{"index": [N], key: [N, ...]}`` over every rank, sorted by index, one row per video.

        A collective call under DDP (every rank must make it, with the same keys); computed once
        and cached until :meth:`reset`, so callbacks and the module share one gather. ``module``
        is the LightningModule (its ``all_gather``). A rank that appended nothing (all its
        videos unreadable) contributes no rows (:func:`share_row_layout`); raises only when no
        rank appended any.
        """
        if self._rows is None:
            local = share_row_layout(module, {k: torch.cat(v) for k, v in self._parts.items()})
            if not local:
                raise RuntimeError("no evaluation outputs to gather: no batch was appended on "
                                   "any rank (no evaluation ran, or every video was unreadable)")
            gathered = [gather_variable(module, tensor) for tensor in local.values()]
            self._rows = dict(zip(local, unique_by_index(*gathered), strict=True))
            self._parts.clear()
        return self._rows


def group_rows(rows: Mapping[str, Tensor], name: str) -> dict[str, Tensor]:
    """The per-branch entries ``"<name>/<branch>"`` of gathered rows as ``{branch: tensor}``."""
    prefix = f"{name}/"
    return {k[len(prefix):]: v for k, v in rows.items() if k.startswith(prefix)}


@dataclass
class VideoResults:
    """Per-video test outputs, gathered from every rank, one row per distinct video, by index.

    Attributes:
        index: ``[N]`` positions in the test split's records (sorted).
        label: ``[N]`` class ids.
        video: per branch ``[N, K]`` views combined with ``average`` (probabilities for
            ``prob``/``max``, logits for ``score``).
        clip: per branch ``[N, K]`` logits of the clip-level view alone (the centre view of the
            middle clip).
        views: per branch ``[N, V, K]`` logits of every view (clip-major: view
            ``v = clip * crops + crop``); empty unless a callback asked for them.
        final: the head's final branch.
        average: how ``video`` was combined.
    """

    index: Tensor
    label: Tensor
    video: dict[str, Tensor]
    clip: dict[str, Tensor]
    views: dict[str, Tensor] = field(default_factory=dict)
    final: str = ""
    average: Average = "prob"

    @classmethod
    def from_rows(cls, rows: Mapping[str, Tensor], final: str,
                  average: Average = "prob") -> VideoResults:
        """From :meth:`ResultAccumulator.gather` rows holding ``index``, ``label`` and the
        per-branch ``video/<branch>``, ``clip/<branch>`` (and optionally ``views/<branch>``)."""
        return cls(index=rows["index"], label=rows["label"], video=group_rows(rows, "video"),
                   clip=group_rows(rows, "clip"), views=group_rows(rows, "views"), final=final,
                   average=average)

    def __len__(self) -> int:
        return int(self.index.numel())

    @property
    def branches(self) -> list[str]:
        return list(self.video)

    def probabilities(self, branch: str | None = None) -> Tensor:
        """``[N, K]`` per-video class probabilities of ``branch`` (default: the final one)."""
        scores = self.video[branch or self.final]
        if self.average == "score":
            return scores.softmax(-1)
        if self.average == "max":  # a max of probabilities does not sum to one
            return scores / scores.sum(-1, keepdim=True).clamp(min=1e-12)
        return scores

    def predictions(self, branch: str | None = None) -> Tensor:
        """``[N]`` predicted class ids of ``branch`` (default: the final one)."""
        return self.video[branch or self.final].argmax(-1)


def subset_clip_indices(num_clips: int, k: int) -> list[int]:
    """``k`` of ``num_clips`` test clips spread evenly over the video (TSN-style centres).

    A ``k``-clip test places its clips evenly over the video; the evenly spread subset of a
    ``num_clips``-clip pass is the closest one can get to it without decoding again. ``k = 1``
    is the middle clip, ``k = num_clips`` all of them.
    """
    if not 1 <= k <= num_clips:
        raise ValueError(f"k must be in 1..{num_clips}, got {k}")
    return sorted({min(num_clips - 1, int((i + 0.5) * num_clips / k)) for i in range(k)})


def accuracy_vs_clips(
    view_logits: Tensor, label: Tensor, crops: int = 1, how: Average = "prob"
) -> dict[int, dict[str, float]]:
    """Video metrics when only ``k`` clips of each video are used, for every ``k`` (one pass).

    unified-analysis Fig. 8 (left) from a single evaluation over all views.

    Args:
        view_logits: ``[N, V, K]`` logits, clip-major (``V = clips * crops``).
        label: ``[N]`` class ids.
        crops: spatial crops per clip (all crops of a chosen clip are used, as in Fig. 8).
        how: view averaging (:func:`average_views`).

    Returns:
        ``{k: {"acc1", "acc5", "mean_class_acc"}}`` (:func:`lightning_modules.metrics.score`,
        fractions in ``[0, 1]``) for ``k = 1 .. clips``.
    """
    num_videos, num_views, _ = view_logits.shape
    if num_views % crops:
        raise ValueError(f"{num_views} views are not a whole number of clips of {crops} crops")
    num_clips = num_views // crops
    per_clip = rearrange(view_logits, "n (clips crops) k -> n clips crops k", crops=crops)
    result: dict[int, dict[str, float]] = {}
    for k in range(1, num_clips + 1):
        chosen = per_clip[:, subset_clip_indices(num_clips, k)]
        scores = average_views(rearrange(chosen, "n clips crops k -> n (clips crops) k"), how)
        result[k] = score(scores, label)
    return result
