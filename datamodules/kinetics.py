"""Kinetics-400/600/700 as the official CSVs and a downloader's video folder leave them."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from datamodules.annotated import AnnotatedVideoDataModule
from datamodules.annotations import (
    AnnotationError,
    EntryTable,
    find_annotation,
    read_csv_columns,
)
from datamodules.base import Split

__all__ = ["KineticsDataModule", "kinetics_clip_name"]

_SPLIT_FILES = {
    "train": ("train",),
    "val": ("validate", "val", "validation"),
    "test": ("test",),
}


def kinetics_clip_name(youtube_id: str, time_start: int, time_end: int) -> str:
    """File name (no extension) of a trimmed clip: ``<youtube_id>_<start:06d>_<end:06d>``."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}"


class KineticsDataModule(AnnotatedVideoDataModule):
    """Kinetics-400 / 600 / 700 (DeepMind's CSV release, any downloader's video folder).

    Annotations (``annotation_dir``, or a ``kinetics<variant>/`` folder inside it): ``train.csv``,
    ``validate.csv`` (or ``val.csv``), ``test.csv``, also with a ``kinetics_<variant>_`` /
    ``kinetics-<variant>_`` prefix; columns ``label,youtube_id,time_start,time_end,split``
    (header present, extra columns such as ``is_cc`` ignored, quoted labels fine; a test CSV
    without ``label`` gives unlabelled records).

    Videos: ``<youtube_id>_<start:06d>_<end:06d>.mp4`` (or ``.mkv``, ``.webm``, …) anywhere under
    ``data_dir`` — ``train/`` and ``val/`` folders, flat or one folder per class (class names
    with spaces or underscores), all work, as the tree is indexed by file name once. A video
    kept untrimmed as ``<youtube_id>.mp4`` is used with its ``time_start``/``time_end`` window.
    Videos that are missing (every copy of Kinetics misses some) are reported once per split
    and skipped. With ``video_backend="frames"`` the same names are looked up as frame folders
    (``python -m datamodules.prepare frames``).

    Classes: the sorted label names of the train CSV (the order of public checkpoints).

    Mini-Kinetics-200 (s3d paper §3.1): ``classes_subset="<200-class list file>"``,
    ``max_per_class={"train": 400, "val": 25}``.

    Args:
        data_dir: the videos.
        variant: 400, 600 or 700 (picks the annotation files when several releases sit side by
            side).
        test_split: what ``test`` evaluates: ``"val"`` (default; the papers report validation
            accuracy, and the test CSVs of the later releases carry no labels) or ``"test"``.
        annotation_dir / classes_subset / max_per_class / subset_seed / on_missing: see
            ``AnnotatedVideoDataModule``.
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    def __init__(
        self,
        data_dir: str,
        variant: Literal[400, 600, 700] = 400,
        test_split: Literal["val", "test"] = "val",
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if variant not in (400, 600, 700):
            raise ValueError(f"variant must be 400, 600 or 700, got {variant!r}")
        if test_split not in ("val", "test"):
            raise ValueError(f"test_split must be 'val' or 'test', got {test_split!r}")
        self.variant = variant
        self.test_split = test_split
        self._columns: dict[str, tuple[str, list[int], dict[str, list[str]]]] = {}

    def annotation_file(self, split: Split) -> str:
        """Path of the CSV that lists ``split`` (``AnnotationError`` naming what was tried)."""
        v = self.variant
        candidates = []
        for stem in _SPLIT_FILES[split]:
            for folder in (f"kinetics{v}/", f"kinetics-{v}/", f"kinetics_{v}/", ""):
                candidates += [f"{folder}{stem}.csv", f"{folder}kinetics_{v}_{stem}.csv",
                               f"{folder}kinetics-{v}_{stem}.csv"]
        return str(find_annotation(self.annotation_dir, candidates,
                                   f"Kinetics-{v} {split} CSV"))

    def _read_columns(self, split: Split) -> tuple[str, list[int], dict[str, list[str]]]:
        """``(file, line numbers, {column: values})`` of a split's CSV, parsed once (the
        classes need the train CSV before its entries do)."""
        if split not in self._columns:
            path = self.annotation_file(split)
            self._columns[split] = (path, *read_csv_columns(
                path, required=("youtube_id", "time_start", "time_end")))
        return self._columns[split]

    def read_classes(self) -> list[str]:
        path, lines, columns = self._read_columns("train")
        labels = columns.get("label", [""] * len(lines))
        if "" in labels:
            line = lines[labels.index("")]
            raise AnnotationError(f"{path}:{line}: train row without a label")
        return sorted(set(labels))

    def source_of(self, split: Split) -> Split:
        return self.test_split if split == "test" else split

    def read_entries(self, split: Split) -> EntryTable:
        # read once: the columns are not needed after this (the records are kept instead)
        path, lines, columns = self._read_columns(split)
        del self._columns[split]
        youtube_ids = columns["youtube_id"]
        if "" in youtube_ids:
            raise AnnotationError(f"{path}:{lines[youtube_ids.index('')]}: empty youtube_id")
        start, end = (self._seconds(columns[c], path, lines, columns)
                      for c in ("time_start", "time_end"))
        names = [kinetics_clip_name(youtube_id, s, e) for youtube_id, s, e
                 in zip(youtube_ids, start.tolist(), end.tolist(), strict=True)]
        return EntryTable(names, self._labels(columns.get("label"), path, lines),
                          start_sec=start.astype(np.float64), end_sec=end.astype(np.float64),
                          file=path, lines=lines)

    @staticmethod
    def _seconds(values: list[str], path: str, lines: list[int],
                 columns: dict[str, list[str]]) -> np.ndarray:
        """Whole seconds ``[N]`` (``int64``) of a time column (decimals cut, as ``int()``)."""
        try:
            seconds = np.asarray(values, dtype=np.float64)
        except ValueError:
            seconds = None
        if seconds is None or not np.isfinite(seconds).all():
            seconds = np.empty(len(values))  # one by one: the first line that is not a number
            for i, value in enumerate(values):
                try:
                    seconds[i] = int(float(value))
                except (ValueError, OverflowError):
                    raise AnnotationError(
                        f"{path}:{lines[i]}: time_start/time_end must be numbers, got "
                        f"{columns['time_start'][i]!r}, {columns['time_end'][i]!r}") from None
        return np.trunc(seconds).astype(np.int64)

    def _labels(self, names: list[str] | None, path: str, lines: list[int]) -> np.ndarray:
        """Class indices ``[N]`` of the label column (``-1`` where empty or absent)."""
        if names is None:
            return np.full(len(lines), -1, dtype=np.int64)
        index = self.class_index
        label: dict[str, int] = {}
        for name in set(names):  # one lookup per distinct name (400 of them, not one per row)
            found = index.get(name) if name else -1
            if found is None:  # raises, naming the first line that gives it
                index.label(name, f"{path}:{lines[names.index(name)]}")
            label[name] = found
        return np.fromiter((label[name] for name in names), dtype=np.int64, count=len(names))

    def locate_entries(self, entries: EntryTable
                       ) -> tuple[list[str | tuple[str, ...] | None], np.ndarray]:
        """The trimmed clip by name (its record reads it whole); else (encoded video only) the
        untrimmed source video, read inside the annotation's time window."""
        # clip names are bare: straight from the index of the tree, one dictionary look-up each
        index = self.locator.index
        places = [index.resolve(name) for name in entries.names]
        windowed = np.zeros(len(places), dtype=bool)
        if self.folders:
            return places, windowed  # a frame folder has no timestamps to trim by
        for i, place in enumerate(places):
            if place is None:
                youtube_id = entries.names[i].rsplit("_", 2)[0]  # ids may hold "_" themselves
                places[i] = index.resolve(youtube_id)
                windowed[i] = isinstance(places[i], str)
        return places, windowed
