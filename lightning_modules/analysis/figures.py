"""Pictures of the analyses as ``uint8 [H, W, 3]`` numpy arrays (matplotlib, off-screen).

Every function returns the rendered image rather than a figure object, so callers log it to any
logger or write it as a PNG without caring about matplotlib state.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display on training machines; must precede pyplot's import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from torch import Tensor  # noqa: E402


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render ``figure`` → ``uint8 [H, W, 3]`` and close it (figures otherwise pile up)."""
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    plt.close(figure)
    return np.ascontiguousarray(rgba[..., :3])


def _names(class_names: Sequence[str] | None, k: int) -> list[str]:
    return list(class_names) if class_names is not None else [str(i) for i in range(k)]


def _draw_confusion(ax, counts: Tensor, names: list[str], normalize: bool, title: str,
                    width: int):
    """One heat map on ``ax``: rows coloured by their share (``normalize``) or by counts, the
    counts written in the cells up to 30 classes; returns the image (for a colour bar)."""
    k = counts.shape[0]
    values = counts / counts.sum(1, keepdim=True).clamp(min=1) if normalize else counts
    image = ax.imshow(values.numpy(), cmap="Blues", vmin=0.0,
                      vmax=1.0 if normalize else max(1.0, float(values.max())))
    if k <= 60:
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
    if k <= 30:
        threshold = 0.5 * (1.0 if normalize else float(values.max()))
        for i in range(k):
            for j in range(k):
                if counts[i, j] > 0:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if values[i, j] > threshold else "black")
    ax.set_xlabel("predicted class")
    # a long run name wraps instead of running off the figure
    ax.set_title(textwrap.fill(title, width=width), fontsize=10)
    return image


def confusion_figure(
    matrix: Tensor, class_names: Sequence[str] | None = None, normalize: bool = True,
    title: str = "confusion matrix", ax_size: float | None = None,
) -> np.ndarray:
    """Heat map of a ``[K, K]`` confusion matrix (row = true, column = predicted).

    ``normalize`` colours each row by its share (recall); counts are written in the cells when
    ``K <= 30`` (beyond that they are unreadable).
    """
    counts = matrix.detach().cpu().double()
    k = counts.shape[0]
    side = ax_size or min(24.0, max(4.5, 0.45 * k + 2.5))
    figure, ax = plt.subplots(figsize=(side + 1.2, side), dpi=100)
    image = _draw_confusion(ax, counts, _names(class_names, k), normalize, title,
                            width=max(30, int(7 * side)))
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                    label="share of the true class" if normalize else "videos")
    ax.set_ylabel("true class")
    figure.tight_layout()
    return figure_to_array(figure)


def compare_confusion_figure(
    baseline: Tensor, model: Tensor, class_names: Sequence[str] | None = None,
    titles: tuple[str, str] = ("baseline", "fine-grained"),
) -> np.ndarray:
    """Two row-normalised confusion matrices side by side (dfb Fig. 3), video counts in the
    cells and one colour bar for both."""
    k = baseline.shape[0]
    names = _names(class_names, k)
    side = min(14.0, max(4.0, 0.4 * k + 2.5))
    # constrained layout leaves room for a colour bar shared by both axes; tight_layout cannot
    figure, axes = plt.subplots(1, 2, figsize=(2 * side + 1.2, side), dpi=100,
                                layout="constrained")
    for ax, matrix, title in zip(axes, (baseline, model), titles, strict=True):
        counts = matrix.detach().cpu().double()
        accuracy = float(counts.diagonal().sum() / counts.sum().clamp(min=1))
        image = _draw_confusion(ax, counts, names, True,
                                f"{title} (acc {100 * accuracy:.1f} %)",
                                width=max(30, int(7 * side)))
    axes[0].set_ylabel("true class")
    figure.colorbar(image, ax=list(axes), fraction=0.025, pad=0.02,
                    label="share of the true class (numbers: videos)")
    return figure_to_array(figure)


def accuracy_vs_clips_figure(
    curves: Mapping[str, Mapping[int, float]], title: str = "accuracy vs number of clips"
) -> np.ndarray:
    """unified-analysis Fig. 8 (left): one line per curve, accuracy in percent over clips."""
    figure, ax = plt.subplots(figsize=(5.5, 4), dpi=100)
    for name, curve in curves.items():
        clips = sorted(curve)
        ax.plot(clips, [100 * curve[c] for c in clips], marker="o", label=name)
    ax.set_xlabel("clips per video")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    return figure_to_array(figure)


def similarity_figure(
    matrices: Mapping[str, Tensor], class_names: Sequence[str] | None = None, bins: int = 20
) -> np.ndarray:
    """u2s Fig. 7: each ``[M, M]`` similarity matrix as a heat map, then a histogram of their
    off-diagonal values (how many class pairs fall in each similarity interval)."""
    count = len(matrices)
    figure, axes = plt.subplots(1, count + 1, figsize=(4.2 * (count + 1), 4), dpi=100)
    axes = np.atleast_1d(axes)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for (name, matrix), ax in zip(matrices.items(), axes[:count], strict=True):
        values = matrix.detach().cpu().float().numpy()
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(name)
        m = values.shape[0]
        if class_names is not None and m <= 40:
            ax.set_xticks(range(m), list(class_names), rotation=90, fontsize=6)
            ax.set_yticks(range(m), list(class_names), fontsize=6)
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        off = values[~np.eye(m, dtype=bool)]
        axes[-1].hist(off, bins=edges, alpha=0.55, label=name)
    axes[-1].set_xlabel("similarity")
    axes[-1].set_ylabel("class pairs")
    axes[-1].set_title("histogram")
    axes[-1].legend()
    figure.tight_layout()
    return figure_to_array(figure)


def _class_axes(ax, class_names: Sequence[str], xlabel: str, ylabel: str) -> None:
    m = len(class_names)
    if m <= 40:  # beyond that the names are unreadable; indices remain
        ax.set_xticks(range(m), list(class_names), rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(m), list(class_names), fontsize=6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def csm_figure(similarity: Tensor, csm: Tensor, class_names: Sequence[str] | None = None,
               title: str = "U2S category similarity (u2s eqs. 1-2)") -> np.ndarray:
    """The similarity ``S`` between class sparsity vectors and the binary CSM derived from it,
    side by side, with class names on both axes and a colour bar each (u2s §III-A)."""
    s = similarity.detach().cpu().float()
    names = _names(class_names, s.shape[0])
    size = max(4.0, 0.22 * len(names) + 2.5)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1.5, size + 0.6), dpi=100)
    panels = [
        (s.numpy(), "similarity S of class sparsity vectors", "viridis", "S (1 = same channels)",
         float(s.min()), float(s.max())),
        (csm.detach().cpu().float().numpy(), "CSM: confusable classes (1) per column", "Greys",
         "CSM entry", 0.0, 1.0),
    ]
    for ax, (values, name, cmap, bar, lo, hi) in zip(axes, panels, strict=True):
        image = ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1)
        ax.set_title(name, fontsize=9)
        _class_axes(ax, names, "class", "class")
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=bar)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure_to_array(figure)


@dataclass
class FramePanel:
    """One frame to draw: ``frame`` ``uint8 [H, W, 3]``, optional ``box`` ``(x0, y0, x1, y1)``
    in pixels, optional ``heat`` ``[H, W]`` in ``[0, 1]`` overlaid, and a ``title``."""

    frame: np.ndarray
    title: str = ""
    box: tuple[float, float, float, float] | None = None
    heat: np.ndarray | None = None


def panel_grid(rows: Sequence[Sequence[FramePanel]], row_titles: Sequence[str] | None = None,
               title: str = "", panel_size: float = 1.9) -> np.ndarray:
    """A grid of frames with boxes (dfb Figs. 4–5) or heat overlays (u2s Fig. 5)."""
    num_rows = max(1, len(rows))
    num_cols = max(1, max((len(r) for r in rows), default=1))
    # row titles (a video's file name and class) get a column of their own, written
    # horizontally: rotated beside a frame, long paths ran into the neighbouring rows
    label_width = 1.1 * panel_size if row_titles else 0.0
    figure, axes = plt.subplots(
        num_rows, num_cols + 1, squeeze=False, dpi=100,
        gridspec_kw={"width_ratios": [label_width or 1e-3] + [panel_size] * num_cols},
        figsize=(panel_size * num_cols + label_width + 0.6, (panel_size + 0.35) * num_rows + 0.6))
    for ax in axes.flat:
        ax.axis("off")
    for r, row in enumerate(rows):
        if row_titles is not None and r < len(row_titles):
            text = "\n".join(textwrap.fill(part, 28) for part in row_titles[r].split("\n"))
            axes[r, 0].text(1.0, 0.5, text, transform=axes[r, 0].transAxes, ha="right",
                            va="center", fontsize=7)
        for c, panel in enumerate(row):
            ax = axes[r, c + 1]
            ax.imshow(panel.frame)
            if panel.heat is not None:
                ax.imshow(panel.heat, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
            if panel.box is not None:
                x0, y0, x1, y1 = panel.box
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                       edgecolor="yellow", linewidth=2))
            ax.set_title(panel.title, fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure_to_array(figure)


def frames_to_uint8(video: Tensor) -> np.ndarray:
    """``uint8`` or float ``[C, T, H, W]`` video (float: any range, min-max scaled) →
    ``uint8 [T, H, W, C]`` for drawing."""
    video = video.detach().cpu()
    if video.dtype != torch.uint8:
        lo, hi = float(video.min()), float(video.max())
        video = ((video - lo) / max(hi - lo, 1e-6) * 255).round().clamp(0, 255).to(torch.uint8)
    return video.permute(1, 2, 3, 0).numpy()


def grid_shape(count: int, max_cols: int = 8) -> tuple[int, int]:
    """Rows and columns to lay ``count`` panels out."""
    cols = min(max_cols, max(1, count))
    return math.ceil(count / cols), cols


__all__ = [
    "FramePanel",
    "accuracy_vs_clips_figure",
    "compare_confusion_figure",
    "confusion_figure",
    "csm_figure",
    "figure_to_array",
    "frames_to_uint8",
    "grid_shape",
    "panel_grid",
    "similarity_figure",
]
