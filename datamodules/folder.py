"""Any dataset laid out as one folder per class."""

from __future__ import annotations

import os
import random
from typing import Any

from datamodules.annotated import AnnotatedVideoDataModule
from datamodules.annotations import (
    VIDEO_EXTENSIONS,
    AnnotationError,
    Entry,
    read_lines,
)
from datamodules.base import Split

__all__ = ["VideoFolderDataModule"]

_SPLIT_DIRS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}


class VideoFolderDataModule(AnnotatedVideoDataModule):
    """Videos (or frame folders) in one sub-folder per class; the class is the folder name.

    Three layouts, tried in this order:

    1. ``data_dir/train/<class>/…`` and ``data_dir/val/<class>/…`` (``validation/`` also
       accepted), optionally ``data_dir/test/<class>/…`` (else ``test`` is ``val``);
    2. ``data_dir/<class>/…`` with ``split_files`` ``{split: file}``, each line a path relative
       to ``data_dir`` (``<class>/<video>``; a trailing class number, UCF101-style, is ignored);
       ``train`` and ``val`` are required, ``test`` falls back to ``val``;
    3. ``data_dir/<class>/…`` split per class with ``val_fraction`` (seeded by ``split_seed``,
       at least one validation video per class with two or more); ``test`` is ``val``.

    A video is a file with a video extension (``.mp4``, ``.avi``, ``.mkv``, ``.webm``, …) or,
    with ``video_backend="frames"`` (or ``"flow"``), a sub-folder of frames (of flow images).
    Classes are the sorted folder names
    (of ``train/`` in layout 1).

    Args:
        data_dir: the class folders (or the ``train``/``val`` folders holding them).
        split_files: layout 2.
        val_fraction: layout 3, the share of each class's videos held out for validation.
        split_seed: layout 3, which videos are held out.
        annotation_dir / classes_subset / max_per_class / subset_seed / on_missing: see
            ``AnnotatedVideoDataModule`` (``annotation_dir`` is where relative ``split_files``
            are looked up).
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    def __init__(
        self,
        data_dir: str,
        split_files: dict[str, str] | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        unknown = set(split_files or {}) - set(_SPLIT_DIRS)
        if unknown:
            raise ValueError(f"split_files keys must be train/val/test, got {sorted(unknown)}")
        self.split_files = dict(split_files or {})
        self.val_fraction = val_fraction
        self.split_seed = split_seed

    # ---- layout ------------------------------------------------------------------------------
    def _split_dir(self, split: Split) -> str | None:
        """``data_dir/<split>`` in layout 1, else ``None``."""
        for name in _SPLIT_DIRS[split]:
            path = os.path.join(self.data_dir, name)
            if os.path.isdir(path):
                return path
        return None

    def _split_layout(self) -> bool:
        train, val = self._split_dir("train"), self._split_dir("val")
        if train is not None and val is None:
            # else "train" would silently become a class of layouts 2/3
            raise AnnotationError(f"{train} exists but no val/ or validation/ beside it: give "
                                  "both split folders, or neither")
        return train is not None

    def _videos(self, folder: str) -> list[str]:
        """Names of the videos directly inside ``folder``, sorted."""
        frames = self.folders
        with os.scandir(folder) as it:
            names = [e.name for e in it if not e.name.startswith(".") and (
                e.is_dir() if frames else
                e.is_file() and os.path.splitext(e.name)[1].lower() in VIDEO_EXTENSIONS)]
        return sorted(names)

    @staticmethod
    def _class_dirs(root: str) -> list[str]:
        if not os.path.isdir(root):
            raise AnnotationError(f"data_dir {root} does not exist")
        with os.scandir(root) as it:
            return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))

    # ---- AnnotatedVideoDataModule -----------------------------------------------------------
    def read_classes(self) -> list[str]:
        root = self._split_dir("train") if self._split_layout() else self.data_dir
        classes = self._class_dirs(root)
        if not classes:
            raise AnnotationError(f"no class folders in {root}")
        empty = [name for name in classes if not self._videos(os.path.join(root, name))]
        if empty:
            # else each would be a class no video ever has: a head output that cannot be right
            what = "frame folders" if self.folders else (
                f"videos ({', '.join(VIDEO_EXTENSIONS)})")
            raise AnnotationError(f"{len(empty)} class folder(s) in {root} hold no {what}: "
                                  f"{empty[:5]}; remove them or move their videos in")
        return classes

    def source_of(self, split: Split) -> Split:
        if split != "test":
            return split
        if self._split_layout():
            return "test" if self._split_dir("test") else "val"
        return "test" if "test" in self.split_files else "val"

    def read_entries(self, split: Split) -> list[Entry]:
        if self._split_layout():
            return self._folder_entries(split)
        if self.split_files:
            return self._file_entries(split)
        return self._fraction_entries(split)

    def _folder_entries(self, split: Split) -> list[Entry]:
        folder = self._split_dir(split)
        assert folder is not None  # source_of sends test to val when there is no test folder
        index = self.class_index
        rel = os.path.relpath(folder, self.data_dir)
        entries = []
        for name in self._class_dirs(folder):
            label = index.label(name, f"{folder}/{name}/ (a class folder)")
            entries += [Entry(name=f"{rel}/{name}/{video}", label=label, where=folder)
                        for video in self._videos(os.path.join(folder, name))]
        return entries

    def _file_entries(self, split: Split) -> list[Entry]:
        given = self.split_files.get(split)
        if given is None:
            raise AnnotationError(f"split_files has no {split!r} file: {self.split_files}")
        path = given if os.path.isabs(given) else os.path.join(self.annotation_dir, given)
        index = self.class_index
        entries = []
        for line, text in read_lines(path):
            where = f"{path}:{line}"
            head, _, tail = text.rpartition(" ")
            video = head.strip() if head and tail.isdigit() else text  # drop a class number
            video = video.replace("\\", "/").removeprefix("./")
            if "/" not in video:
                raise AnnotationError(f"{where}: expected '<class>/<video>', got {text!r}")
            label = index.label(video.split("/")[0], where)
            entries.append(Entry(name=video, label=label, where=where))
        return entries

    def _fraction_entries(self, split: Split) -> list[Entry]:
        entries = []
        for label, name in enumerate(self.all_classes):
            videos = self._videos(os.path.join(self.data_dir, name))
            order = list(range(len(videos)))
            random.Random(f"{self.split_seed}-{name}").shuffle(order)
            held = round(len(videos) * self.val_fraction)
            held = max(held, 1) if len(videos) >= 2 else 0
            val = set(order[:held])
            entries += [Entry(name=f"{name}/{video}", label=label, where=self.data_dir)
                        for i, video in enumerate(videos) if (i in val) != (split == "train")]
        return entries
