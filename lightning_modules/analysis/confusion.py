"""Confusion analysis (dfb §5.2: Table 2, Table 3, Fig. 3): which classes a model mixes up.

Pure functions on tensors and class names, usable without Lightning: a confusion matrix, the
most-confused pairs with counts, per-class and per-group accuracy, and the comparison of two
models' confusions (baseline vs fine-grained).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

#: a class→group map in either direction: ``{group: [class, ...]}`` (a class may sit in several
#: groups, like the synthetic benchmark's) or ``{class: group}`` (Kinetics parent classes)
ClassGroups = Mapping[str, Sequence[str]] | Mapping[str, str]


def confusion_matrix(predictions: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """``[K, K]`` long counts; row = true class, column = predicted class.

    Args:
        predictions: ``[N]`` predicted class ids.
        labels: ``[N]`` true class ids.
        num_classes: ``K``.
    """
    predictions, labels = predictions.long().cpu(), labels.long().cpu()
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels "
                         f"{tuple(labels.shape)} differ in shape")
    flat = labels * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


@dataclass(frozen=True)
class ConfusedPair:
    """``count`` videos of class ``true`` were predicted as ``predicted`` (``of`` = class size)."""

    true: str
    predicted: str
    count: int
    of: int

    @property
    def rate(self) -> float:
        return self.count / self.of if self.of else 0.0


def most_confused_pairs(
    matrix: Tensor, class_names: Sequence[str], top: int = 10, symmetric: bool = False
) -> list[ConfusedPair]:
    """The off-diagonal cells with the most videos, largest first (dfb Table 3).

    Args:
        matrix: ``[K, K]`` confusion counts (row = true class).
        class_names: ``K`` names.
        top: how many pairs.
        symmetric: count ``a→b`` and ``b→a`` together as one unordered pair (reported as
            ``true=a, predicted=b`` with ``a`` the lower class id).

    Ties are broken by class ids, so the order is deterministic. Zero-count cells are left out.
    """
    counts = matrix.detach().long().cpu().clone()
    sizes = counts.sum(1)
    if symmetric:
        counts = counts + counts.T
        counts = torch.triu(counts, diagonal=1)
    counts.fill_diagonal_(0)
    k = counts.shape[0]
    flat = counts.flatten()
    # stable sort on -count keeps (row, column) order among equal counts
    order = torch.sort(-flat, stable=True).indices[: max(0, top)]
    pairs = []
    for cell in order.tolist():
        count = int(flat[cell])
        if count == 0:
            break
        i, j = divmod(cell, k)
        of = int(sizes[i] + sizes[j]) if symmetric else int(sizes[i])
        pairs.append(ConfusedPair(class_names[i], class_names[j], count, of))
    return pairs


def per_class_accuracy(matrix: Tensor) -> Tensor:
    """``[K]`` float recall of each class (NaN for a class without test videos)."""
    counts = matrix.double()
    total = counts.sum(1)
    return torch.where(total > 0, counts.diagonal() / total.clamp(min=1), torch.nan).float()


def normalize_groups(groups: ClassGroups, class_names: Sequence[str]) -> dict[str, list[int]]:
    """Either direction of a class→group map → ``{group: [class ids]}`` (group order kept).

    Class names match exactly or else ignoring case, quotes and ``_`` vs space (Kinetics'
    parent-class lists and the annotation CSVs spell them differently). Raises ``KeyError``
    naming a class the map has that ``class_names`` lacks.
    """
    position = {name: i for i, name in enumerate(class_names)}
    # published group files spell classes their own way ("riding a bike" / "riding_a_bike")
    loose = {_loose(name): i for i, name in enumerate(class_names)}
    result: dict[str, list[int]] = {}
    for key, value in groups.items():
        # {class: group} has string values; {group: [classes]} has lists
        group, members = (value, [key]) if isinstance(value, str) else (key, list(value))
        for member in members:
            index = position.get(member, loose.get(_loose(member)))
            if index is None:
                raise KeyError(f"class {member!r} of group {group!r} is not one of the "
                               f"{len(class_names)} classes")
            result.setdefault(group, []).append(index)
    return result


def _loose(name: str) -> str:
    """A class name compared ignoring case, surrounding quotes and ``_`` vs space."""
    return " ".join(name.strip().strip('"').replace("_", " ").lower().split())


def load_class_groups(path: str | Path) -> dict[str, list[str]]:
    """Read a class→group map: JSON (either direction) or CSV rows ``class,group``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class group file not found: {path}")
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object class→group or group→[classes]")
        if all(isinstance(v, str) for v in data.values()):
            return _invert(data)
        return {group: list(members) for group, members in data.items()}
    groups: dict[str, list[str]] = {}
    with path.open(newline="") as handle:
        for row_number, row in enumerate(csv.reader(handle), 1):
            if not row or row[0].startswith("#") or row[:2] == ["class", "group"]:
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{row_number}: expected 'class,group', got {row}")
            groups.setdefault(row[1].strip(), []).append(row[0].strip())
    return groups


def _invert(class_to_group: Mapping[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, group in class_to_group.items():
        groups.setdefault(group, []).append(name)
    return groups


def per_group_accuracy(
    matrix: Tensor, class_names: Sequence[str], groups: ClassGroups
) -> dict[str, float]:
    """Mean per-class accuracy of each group's classes (dfb §5.2: "the Top-1 accuracy of a
    meta-category is the average Top-1 accuracy of all its child actions"). Classes without
    test videos are left out of their group's mean; a group with none gets NaN."""
    accuracy = per_class_accuracy(matrix)
    result = {}
    for group, members in normalize_groups(groups, class_names).items():
        values = accuracy[members]
        values = values[~values.isnan()]
        result[group] = float(values.mean()) if values.numel() else float("nan")
    return result


def group_confusion(matrix: Tensor, members: Sequence[int]) -> Tensor:
    """The ``[G, G]`` block of the confusion matrix among one group's classes (dfb Fig. 3)."""
    index = torch.as_tensor(list(members), dtype=torch.long)
    return matrix[index][:, index]


@dataclass(frozen=True)
class PairComparison:
    """A (true, predicted) pair and how many videos each model confuses (dfb Table 3)."""

    true: str
    predicted: str
    baseline: int
    model: int

    @property
    def change(self) -> int:
        return self.model - self.baseline


def compare_confusions(
    baseline: Tensor, model: Tensor, class_names: Sequence[str], top: int = 10
) -> dict[str, list[PairComparison]]:
    """dfb Table 3 from two confusion matrices over the same test set.

    Returns ``{"improved": ..., "worsened": ...}``: the pairs the model confuses less
    (largest reduction first, ties by the baseline's count) and more (largest increase first),
    each with both models' counts.
    """
    if baseline.shape != model.shape:
        raise ValueError(f"confusion matrices differ in shape: {tuple(baseline.shape)} vs "
                         f"{tuple(model.shape)}")
    base, ours = baseline.long().cpu().clone(), model.long().cpu().clone()
    base.fill_diagonal_(0)
    ours.fill_diagonal_(0)
    k = base.shape[0]
    cells = [(i, j) for i in range(k) for j in range(k) if i != j and (base[i, j] or ours[i, j])]

    def row(cell: tuple[int, int]) -> PairComparison:
        i, j = cell
        return PairComparison(class_names[i], class_names[j], int(base[i, j]), int(ours[i, j]))

    rows = [row(c) for c in cells]
    improved = sorted((r for r in rows if r.change < 0), key=lambda r: (r.change, -r.baseline))
    worsened = sorted((r for r in rows if r.change > 0), key=lambda r: (-r.change, -r.model))
    return {"improved": improved[:top], "worsened": worsened[:top]}


def compare_group_accuracy(
    baseline: Tensor, model: Tensor, class_names: Sequence[str], groups: ClassGroups
) -> list[tuple[str, float, float, float]]:
    """dfb Table 2: ``(group, baseline acc, model acc, improvement)``, largest gain first."""
    before = per_group_accuracy(baseline, class_names, groups)
    after = per_group_accuracy(model, class_names, groups)
    rows = [(g, before[g], after[g], after[g] - before[g]) for g in before]
    return sorted(rows, key=lambda r: -r[3] if r[3] == r[3] else float("inf"))


__all__ = [
    "ClassGroups",
    "ConfusedPair",
    "PairComparison",
    "compare_confusions",
    "compare_group_accuracy",
    "confusion_matrix",
    "group_confusion",
    "load_class_groups",
    "most_confused_pairs",
    "normalize_groups",
    "per_class_accuracy",
    "per_group_accuracy",
]
