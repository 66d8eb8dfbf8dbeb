"""Pictures of what fine-grained heads look at, logged after ``test`` (global-zero rank only).

- :class:`FilterResponseVisualizer` — for chosen classes, the frame and box where each of the
  class's discriminative filters responds maximally (dfb §5.3, Figs. 4–5). Reads
  ``HeadOutput.extras["filter_location"]`` (``[B, C·N, 3]``, ``(t, y, x)`` in the filter
  bank's grid) and ``extras["filter_response"]``.
- :class:`U2SMaskVisualizer` — the U2S mask (``extras["mask"]``, ``[B, 1, T', H', W']``)
  upsampled and laid over the frames (u2s Fig. 5).
- :class:`WeightSimilarityVisualizer` — the U2S mask-network weight similarity ``S^w`` (u2s
  eq. 4, Fig. 7) and, once set, the category similarity matrix. Two models' ``S^w`` (without /
  with category regularisation) side by side: ``cli.py analyze weight-similarity``.

A model whose head does not produce the extras (e.g. ``GAPHead``) is skipped with one message.
YAML::

    - class_path: lightning_modules.callbacks.FilterResponseVisualizer
      init_args: {classes: [stripes-mark_top-grow, stripes-mark_bottom-grow], videos_per_class: 3}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor
from torch.nn import functional as F

from datamodules.predict import relative_path
from lightning_modules.analysis.figures import (
    FramePanel,
    frames_to_uint8,
    panel_grid,
    similarity_figure,
)
from lightning_modules.analysis.report import AnalysisReporter
from lightning_modules.callbacks.evaluation import class_names_of, video_root_of


def filter_box(location: Sequence[int], grid: Sequence[int], size: Sequence[int],
               box_scale: float = 2.0) -> tuple[int, tuple[float, float, float, float]]:
    """Map a filter-bank cell to the input clip: ``(frame, (x0, y0, x1, y1))`` in pixels.

    Args:
        location: ``(t, y, x)`` of the maximum in the feature grid.
        grid: the grid's ``(T', H', W')``.
        size: the input clip's ``(T, H, W)``.
        box_scale: box side in feature cells (a cell is the network's stride; its receptive
            field is larger, so the box covers ``box_scale`` cells around the cell's centre).
    """
    t, y, x = (int(v) for v in location)
    (tg, hg, wg), (tn, hn, wn) = grid, size
    frame = min(tn - 1, int((t + 0.5) * tn / tg))
    cy, cx = (y + 0.5) * hn / hg, (x + 0.5) * wn / wg
    half_h, half_w = 0.5 * box_scale * hn / hg, 0.5 * box_scale * wn / wg
    box = (max(0.0, cx - half_w), max(0.0, cy - half_h), min(float(wn), cx + half_w),
           min(float(hn), cy + half_h))
    return frame, box


class _TestVideoVisualizer(pl.Callback):
    """Shared: pick test videos of chosen classes, run them through the model one clip each."""

    log_key = "test/visualization"

    def __init__(self, classes: list[str | int] | None = None, max_classes: int = 2,
                 videos_per_class: int = 2, view: int = 0, dirpath: str | None = None) -> None:
        super().__init__()
        if videos_per_class < 1 or max_classes < 1:
            raise ValueError("videos_per_class and max_classes must be >= 1")
        self.classes, self.max_classes = classes, max_classes
        self.videos_per_class, self.view, self.dirpath = videos_per_class, view, dirpath
        self.image: np.ndarray | None = None
        self._skipped = False

    def _dataset(self, trainer: pl.Trainer) -> Any:
        loaders = trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, Sequence) else loaders
        return loader.dataset

    def _class_ids(self, names: list[str]) -> list[int]:
        if self.classes is None:
            return list(range(min(self.max_classes, len(names))))
        ids = []
        for c in self.classes:
            if isinstance(c, int) or (isinstance(c, str) and c.isdigit()):
                ids.append(int(c))
            elif c in names:
                ids.append(names.index(c))
            else:
                raise KeyError(f"{type(self).__name__}: class {c!r} is not one of {names[:10]}…")
        return ids

    def _videos(self, trainer: pl.Trainer, class_ids: list[int]) -> list[tuple[int, int]]:
        """``(dataset index, class)`` of the first ``videos_per_class`` test videos per class."""
        records = self._dataset(trainer).records
        chosen = []
        for c in class_ids:
            found = [i for i, r in enumerate(records) if r.label == c][: self.videos_per_class]
            chosen += [(i, c) for i in found]
        return chosen

    @torch.no_grad()
    def _forward(self, pl_module: pl.LightningModule, clip: Tensor) -> tuple[dict, Any]:
        """``uint8 [C, T, H, W]`` → (backbone stage dict, HeadOutput) for one clip."""
        # shaped as a test batch [B=1, V=1, C, T, H, W]; the device transfer and normalisation
        # a batch gets (the datamodule's hook when it has one)
        batch = pl_module._apply_batch_transfer_handler({"video": clip[None, None]})
        features = pl_module.backbone(pl_module.normalization(batch["video"][:, 0]))
        return features, pl_module.head(features)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        dataset = self._dataset(trainer)
        if not hasattr(dataset, "records"):
            rank_zero_info(f"{type(self).__name__}: the test dataset has no records; skipped")
            return
        names = class_names_of(trainer, pl_module, int(getattr(pl_module, "num_classes", 0)))
        was_training = pl_module.training
        pl_module.eval()
        try:
            rows, row_titles = [], []
            for index, label in self._videos(trainer, self._class_ids(names)):
                views = dataset[index]["video"]  # [V, C, T, H, W] (test) or [C, T, H, W]
                clip = views[min(self.view, views.shape[0] - 1)] if views.ndim == 5 else views
                features, output = self._forward(pl_module, clip)
                row = self.panels(pl_module, clip, features, output, label, names)
                if row is None:
                    if not self._skipped:
                        rank_zero_info(f"{type(self).__name__}: the head's output lacks the "
                                       "extras it draws; skipped")
                        self._skipped = True
                    return
                rows.append(row)
                # the video's file (relative to the data root) and its class
                path = relative_path(dataset.records[index].path, video_root_of(trainer))
                row_titles.append(f"{path}\n({names[label]})")
        finally:
            pl_module.train(was_training)
        if rows:
            self.image = panel_grid(rows, row_titles, title=self.title)
            written = AnalysisReporter(trainer, self.dirpath).image(self.log_key, self.image)
            rank_zero_info(f"{type(self).__name__}: {len(rows)} videos drawn"
                           + (f", written to {written}" if written else ""))

    title = ""

    def panels(self, pl_module: pl.LightningModule, clip: Tensor, features: dict, output: Any,
               label: int, names: list[str]) -> list[FramePanel] | None:
        raise NotImplementedError


class FilterResponseVisualizer(_TestVideoVisualizer):
    """Where each discriminative filter of a video's class fires maximally (dfb Figs. 4–5).

    One row per chosen test video; one panel per filter of the video's class (filter ``k``
    belongs to class ``k // N``), showing the frame of the maximum with a box around it and
    the response value.

    Args:
        classes: class names or ids (default: the first ``max_classes``).
        max_classes / videos_per_class: how many.
        view: which test view of a video to use (0: first clip, first crop).
        box_scale: box side in feature cells (see :func:`filter_box`).
        dirpath: folder for the PNG.
    """

    log_key = "test/filter_responses"
    title = "discriminative filters: frame and place of the maximal response"

    def __init__(self, classes: list[str | int] | None = None, max_classes: int = 2,
                 videos_per_class: int = 3, view: int = 0, box_scale: float = 2.0,
                 dirpath: str | None = None) -> None:
        super().__init__(classes, max_classes, videos_per_class, view, dirpath)
        self.box_scale = box_scale

    @staticmethod
    def _grid(head: Any, features: dict[str, Tensor]) -> tuple[int, int, int]:
        # the filter bank reads stage 4's grid with the local branch, the global stage's without
        stage = head.local_stage if getattr(head, "local_branch", False) else getattr(
            head, "global_stage", "stage5")
        return tuple(features[stage].shape[2:])  # type: ignore[return-value]

    def panels(self, pl_module: pl.LightningModule, clip: Tensor, features: dict, output: Any,
               label: int, names: list[str]) -> list[FramePanel] | None:
        extras = getattr(output, "extras", {}) or {}
        if "filter_location" not in extras:
            return None
        location = extras["filter_location"][0].cpu()  # [C·N, 3]
        response = extras.get("filter_response", torch.zeros(len(location)))[0].cpu()
        per_class = location.shape[0] // max(1, len(names))
        grid = self._grid(pl_module.head, features)
        frames = frames_to_uint8(clip)  # [T, H, W, 3]
        size = frames.shape[:3]
        row = []
        for k in range(label * per_class, (label + 1) * per_class):
            frame, box = filter_box(location[k].tolist(), grid, size, self.box_scale)
            row.append(FramePanel(frames[frame], f"filter {k - label * per_class}: frame "
                                  f"{frame}, response {float(response[k]):.2f}", box=box))
        return row


class U2SMaskVisualizer(_TestVideoVisualizer):
    """The U2S mask over the frames of chosen test videos (u2s Fig. 5).

    One row per video; ``frames`` panels spread over the clip, each the frame with the
    selected mask (``extras["mask"]``, trilinearly upsampled to the clip, min-max scaled per
    video) as a heat overlay. Titles name the class whose CSM column selected the mask.
    """

    log_key = "test/u2s_masks"
    title = "U2S masks (selected by the universal prediction's CSM column)"

    def __init__(self, classes: list[str | int] | None = None, max_classes: int = 2,
                 videos_per_class: int = 2, view: int = 0, frames: int = 8,
                 dirpath: str | None = None) -> None:
        super().__init__(classes, max_classes, videos_per_class, view, dirpath)
        self.frames = frames

    def panels(self, pl_module: pl.LightningModule, clip: Tensor, features: dict, output: Any,
               label: int, names: list[str]) -> list[FramePanel] | None:
        extras = getattr(output, "extras", {}) or {}
        if "mask" not in extras:
            return None
        frames = frames_to_uint8(clip)  # [T, H, W, 3]
        mask = F.interpolate(extras["mask"].float().cpu(), size=tuple(frames.shape[:3]),
                             mode="trilinear", align_corners=False)[0, 0]  # [T, H, W]
        mask = (mask - mask.min()) / (mask.max() - mask.min()).clamp(min=1e-6)
        guide = extras.get("guide")
        guide_name = names[int(guide[0])] if guide is not None else "?"
        steps = np.linspace(0, frames.shape[0] - 1, min(self.frames, frames.shape[0]))
        # the selecting class goes once, on the first panel, on its own line (names are long)
        return [FramePanel(frames[int(t)], f"frame {int(t)}" + (f"\nmask of {guide_name}" if i == 0
                                                           else ""),
                           heat=mask[int(t)].numpy()) for i, t in enumerate(np.round(steps))]


class WeightSimilarityVisualizer(pl.Callback):
    """The U2S head's mask-network weight similarity ``S^w`` (u2s eq. 4, Fig. 7 a/b) and its
    histogram, plus the category similarity matrix when set; after ``fit`` and ``test``."""

    log_key = "u2s/weight_similarity"

    def __init__(self, on_fit_end: bool = True, on_test_end: bool = True,
                 dirpath: str | None = None) -> None:
        super().__init__()
        self.after_fit, self.after_test, self.dirpath = on_fit_end, on_test_end, dirpath
        self.image: np.ndarray | None = None

    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        head = getattr(pl_module, "head", None)
        if not trainer.is_global_zero:
            return
        if head is None or not hasattr(head, "weight_similarity"):
            rank_zero_info("WeightSimilarityVisualizer: the head has no weight_similarity(); "
                           "skipped")
            return
        with torch.no_grad():
            matrices = {"weight similarity S^w": head.weight_similarity().cpu()}
            if bool(getattr(head, "csm_is_set", False)):
                matrices["category similarity matrix"] = head.csm.float().cpu()
        names = class_names_of(trainer, pl_module, matrices["weight similarity S^w"].shape[0])
        self.image = similarity_figure(matrices, names)
        written = AnalysisReporter(trainer, self.dirpath).image(self.log_key, self.image)
        if written:
            rank_zero_info(f"WeightSimilarityVisualizer: written to {written}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.after_fit:
            self.render(trainer, pl_module)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.after_test:
            self.render(trainer, pl_module)


__all__ = [
    "FilterResponseVisualizer",
    "U2SMaskVisualizer",
    "WeightSimilarityVisualizer",
    "filter_box",
]
