"""UCF101 and HMDB51 with their official three train/test splits."""

from __future__ import annotations

import re
from typing import Any, Literal

from datamodules.annotated import AnnotatedVideoDataModule
from datamodules.annotations import (
    AnnotationError,
    Entry,
    find_annotation,
    find_annotations,
    read_lines,
)
from datamodules.base import Split

__all__ = ["HMDB51DataModule", "UCF101DataModule"]


class _ThreeSplitDataModule(AnnotatedVideoDataModule):
    """UCF101/HMDB51 protocol: official split 1, 2 or 3; ``val`` and ``test`` read its test list.

    Args:
        data_dir: the videos.
        split: official split 1, 2 or 3.
        **kwargs: ``AnnotatedVideoDataModule`` / ``VideoDataModule`` arguments.
    """

    def __init__(self, data_dir: str, split: Literal[1, 2, 3] = 1, **kwargs: Any) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if split not in (1, 2, 3):
            raise ValueError(f"split must be 1, 2 or 3, got {split!r}")
        self.split = split

    def source_of(self, split: Split) -> Split:
        return "train" if split == "train" else "test"  # no separate validation list


class UCF101DataModule(_ThreeSplitDataModule):
    """UCF101 (101 classes, ``.avi``), official split ``split`` of three.

    Annotations (``annotation_dir`` or its ``ucfTrainTestlist/`` folder, as unzipped):
    ``classInd.txt`` (``1 ApplyEyeMakeup``; the number minus one is the label),
    ``trainlist0N.txt`` (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``),
    ``testlist0N.txt`` (``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi``; the class is the
    folder). The official files have Windows line endings; class names are matched ignoring
    case (the release spells ``HandstandPushups`` and ``HandStandPushups``).

    Videos: ``data_dir/<Class>/v_<Class>_gXX_cYY.avi`` (``UCF-101/`` as unpacked, or its parent:
    a video not at its listed path is found by name).

    ``val`` and ``test`` are both the split's test list (the protocol has no separate
    validation set); ``experiments/run_splits.py`` reports the mean over the three splits.

    Args:
        data_dir: the videos.
        split: official split 1, 2 or 3.
        annotation_dir / classes_subset / max_per_class / subset_seed / on_missing: see
            ``AnnotatedVideoDataModule``.
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    def _file(self, name: str, what: str) -> str:
        return str(find_annotation(self.annotation_dir, [name], what))

    def read_classes(self) -> list[str]:
        path = self._file("classInd.txt", "UCF101 class index")
        by_number: dict[int, str] = {}
        for line, text in read_lines(path):
            number, _, name = text.replace("\t", " ").partition(" ")
            if not number.isdigit() or not name.strip():
                raise AnnotationError(f"{path}:{line}: expected '<number> <Class>', got "
                                      f"{text!r}")
            by_number[int(number)] = name.strip()
        if sorted(by_number) != list(range(1, len(by_number) + 1)):
            raise AnnotationError(f"{path}: class numbers must be 1..{len(by_number)}")
        return [by_number[n] for n in range(1, len(by_number) + 1)]

    def read_entries(self, split: Split) -> list[Entry]:
        train = split == "train"
        name = f"{'trainlist' if train else 'testlist'}{self.split:02d}.txt"
        path = self._file(name, f"UCF101 split {self.split} {'train' if train else 'test'} list")
        classes = self.all_classes
        index = self.class_index
        entries = []
        for line, text in read_lines(path):
            where = f"{path}:{line}"
            parts = text.split()
            video = parts[0].replace("\\", "/")
            if "/" not in video:
                raise AnnotationError(f"{where}: expected '<Class>/<file>.avi', got {text!r}")
            if len(parts) > 1:
                if len(parts) > 2 or not parts[1].isdigit():
                    raise AnnotationError(f"{where}: expected '<Class>/<file>.avi <number>', "
                                          f"got {text!r}")
                number = int(parts[1])
                if not 1 <= number <= len(classes):
                    raise AnnotationError(f"{where}: class number {number} outside 1.."
                                          f"{len(classes)} of classInd.txt")
                label = number - 1
            else:
                label = index.label(video.split("/")[0], where)
            entries.append(Entry(name=video, label=label, where=where))
        return entries


class HMDB51DataModule(_ThreeSplitDataModule):
    """HMDB51 (51 classes, ``.avi``), official split ``split`` of three.

    Annotations (``annotation_dir`` or its ``testTrainMulti_7030_splits/`` folder):
    ``<class>_test_split<N>.txt``, one per class and split, lines ``<name>.avi <0|1|2>``
    (1 train, 2 test, 0 unused; lines may carry trailing spaces). Classes: the sorted class
    names of those files.

    Videos: ``data_dir/<class>/<name>.avi`` (or found by name anywhere under ``data_dir``).
    ``val`` and ``test`` are both the split's test videos.

    Args:
        data_dir: the videos.
        split: official split 1, 2 or 3.
        annotation_dir / classes_subset / max_per_class / subset_seed / on_missing: see
            ``AnnotatedVideoDataModule``.
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    def __init__(
        self,
        data_dir: str,
        split: Literal[1, 2, 3] = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, split=split, **kwargs)
        self._files: dict[str, str] | None = None

    def split_files(self) -> dict[str, str]:
        """``{class: split file}`` for this split (``AnnotationError`` when there are none)."""
        if self._files is None:
            pattern = rf"(.+)_test_split{self.split}\.txt"
            found = find_annotations(self.annotation_dir, pattern)
            if not found:
                # reuse find_annotation's report of what is there
                find_annotation(self.annotation_dir, [f"<class>_test_split{self.split}.txt"],
                                f"HMDB51 split {self.split} files")
            match = re.compile(pattern)
            self._files = {match.fullmatch(p.name).group(1): str(p) for p in found}
        return self._files

    def read_classes(self) -> list[str]:
        return sorted(self.split_files())

    def read_entries(self, split: Split) -> list[Entry]:
        wanted = "1" if split == "train" else "2"
        entries = []
        for label, name in enumerate(self.all_classes):
            path = self.split_files()[name]
            for line, text in read_lines(path):
                where = f"{path}:{line}"
                video, _, mark = text.rpartition(" ")
                video, mark = video.strip(), mark.strip()
                if not video or mark not in ("0", "1", "2"):
                    raise AnnotationError(f"{where}: expected '<name>.avi <0|1|2>', got "
                                          f"{text!r}")
                if mark == wanted:
                    entries.append(Entry(name=f"{name}/{video}", label=label, where=where))
        return entries
