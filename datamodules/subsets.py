"""Class subsets and per-class caps (Mini-Kinetics-200, Mini-SSV2), drawn reproducibly."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence

from datamodules.annotations import AnnotationError, ClassIndex, read_name_list
from datamodules.class_lists import PACKAGED_CLASS_LISTS, packaged_class_list
from datamodules.records import RecordTable, VideoRecord

__all__ = ["ClassesSubset", "MaxPerClass", "cap_per_class", "check_subset_arguments",
           "choose_classes"]

# int first: jsonargparse tries union members in order, and "87" on a command line is a count
ClassesSubset = int | list[str] | str | None
MaxPerClass = int | dict[str, int] | None


def check_subset_arguments(classes_subset: ClassesSubset, max_per_class: MaxPerClass) -> None:
    """``ValueError`` for a subset or cap that cannot be meant."""
    if isinstance(classes_subset, bool) or (
            isinstance(classes_subset, int) and classes_subset < 1):
        raise ValueError(f"classes_subset as a number must be >= 1, got {classes_subset!r}")
    caps = max_per_class.values() if isinstance(max_per_class, Mapping) else [max_per_class]
    if any(c is not None and c < 1 for c in caps):
        raise ValueError(f"max_per_class must be >= 1, got {max_per_class!r}")
    if isinstance(max_per_class, Mapping):
        unknown = set(max_per_class) - {"train", "val", "test"}
        if unknown:
            raise ValueError(f"max_per_class keys must be train/val/test, got {unknown}")


def choose_classes(full: Sequence[str], subset: ClassesSubset, *, seed: int,
                   search_dir: str) -> list[int]:
    """Full-list labels of the kept classes, sorted (the dataset's order is kept).

    ``subset``: ``None`` (all), an int ``N`` (``N`` classes drawn with ``seed``), a list of
    names, a file with one name per line (a relative path is also looked up in
    ``search_dir``), or the name of a published list shipped with the package
    (``mini_kinetics400``, ``mini_ssv2``: ``datamodules.class_lists``).
    """
    if subset is None:
        return list(range(len(full)))
    if isinstance(subset, str) and subset.isdigit() and not os.path.exists(subset):
        subset = int(subset)  # a count that reached us as text
    if isinstance(subset, int):
        if subset > len(full):
            raise ValueError(f"classes_subset={subset} but the dataset has {len(full)} classes")
        return sorted(random.Random(seed).sample(range(len(full)), subset))
    if isinstance(subset, str):
        path = os.path.expanduser(subset)
        if not os.path.isfile(path) and not os.path.isabs(path):
            # a relative name may refer to a list kept beside the annotations
            path = os.path.join(search_dir, path)
        if os.path.isfile(path):
            names, source = read_name_list(path), path
        elif subset in PACKAGED_CLASS_LISTS:
            names, source = packaged_class_list(subset), f"packaged list {subset!r}"
        else:
            raise AnnotationError(f"classes_subset file not found: {subset} (also looked in "
                                  f"{search_dir}; packaged lists: "
                                  f"{sorted(PACKAGED_CLASS_LISTS)})")
    else:
        names, source = list(subset), "classes_subset"
    index = ClassIndex(full)
    chosen = {index.label(name, f"{source} (entry {i + 1})") for i, name in enumerate(names)}
    if not chosen:
        raise AnnotationError(f"{source}: classes_subset is empty")
    return sorted(chosen)


def cap_per_class(records: Sequence[VideoRecord], cap: int | None, *, key: str
                  ) -> Sequence[VideoRecord]:
    """At most ``cap`` records per class, listed order kept. The draw for each class depends
    only on ``key`` and the label (``"<seed>-<source list>"``), so ``val`` and a ``test`` that
    read the same list get the same videos."""
    if cap is None:
        return records
    labels = (records.labels.tolist() if isinstance(records, RecordTable)
              else [r.label for r in records])
    by_class: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        by_class.setdefault(label, []).append(position)
    keep: set[int] = set()
    for label, positions in by_class.items():
        if len(positions) <= cap:
            keep.update(positions)
        else:
            keep.update(random.Random(f"{key}-{label}").sample(positions, cap))
    return [records[position] for position in sorted(keep)]
