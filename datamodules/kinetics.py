"""Kinetics-400/600/700 as the official CSVs and a downloader's video folder leave them."""

from __future__ import annotations

from typing import Any, Literal

from datamodules.annotated import AnnotatedVideoDataModule
from datamodules.annotations import (
    AnnotationError,
    Entry,
    find_annotation,
    read_csv_rows,
)
from datamodules.base import Split
from datamodules.records import VideoRecord

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
        self._rows: dict[str, list[tuple[str, int, dict[str, str]]]] = {}

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

    def _read_rows(self, split: Split) -> list[tuple[str, int, dict[str, str]]]:
        """``(file, line, row)`` of a split's CSV, parsed once (classes need the train rows)."""
        if split not in self._rows:
            path = self.annotation_file(split)
            self._rows[split] = [(path, line, row) for line, row in
                                 read_csv_rows(path, required=("youtube_id", "time_start",
                                                               "time_end"))]
        return self._rows[split]

    def read_classes(self) -> list[str]:
        rows = self._read_rows("train")
        labels = {row.get("label", "") for _, _, row in rows}
        if "" in labels:
            path, line, _ = next(r for r in rows if not r[2].get("label"))
            raise AnnotationError(f"{path}:{line}: train row without a label")
        return sorted(labels)

    def source_of(self, split: Split) -> Split:
        return self.test_split if split == "test" else split

    def read_entries(self, split: Split) -> list[Entry]:
        index = self.class_index
        entries = []
        for path, line, row in self._read_rows(split):
            where = f"{path}:{line}"
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError:
                raise AnnotationError(
                    f"{where}: time_start/time_end must be numbers, got "
                    f"{row['time_start']!r}, {row['time_end']!r}") from None
            youtube_id = row["youtube_id"]
            if not youtube_id:
                raise AnnotationError(f"{where}: empty youtube_id")
            label_name = row.get("label", "")
            label = index.label(label_name, where) if label_name else -1
            entries.append(Entry(name=kinetics_clip_name(youtube_id, start, end), label=label,
                                 where=where, start_sec=float(start), end_sec=float(end)))
        return entries

    def locate(self, entry: Entry, label: int) -> VideoRecord | tuple[str, ...] | None:
        """The trimmed clip by name; else (encoded video only) the untrimmed source video,
        read inside the annotation's time window."""
        found = self.locator.find(entry.name)
        if found.path is not None:
            return VideoRecord(path=found.path, label=label)  # already cut to the window
        if found.ambiguous:
            return found.candidates
        if self.folders:
            return None  # a frame folder has no timestamps to trim by
        youtube_id = entry.name.rsplit("_", 2)[0]  # ids may hold "_" themselves
        found = self.locator.index.find(youtube_id)
        if found.path is None:
            return found.candidates if found.ambiguous else None
        return VideoRecord(path=found.path, label=label, start_sec=entry.start_sec,
                           end_sec=entry.end_sec)
