"""Something-Something v1 (JPEG frame folders) and v2 (WebM videos), as TwentyBN published them.

Both are mirror-sensitive ("Pushing something from left to right" vs "… right to left"), so the
horizontal-flip augmentation is off by default. ``flip=True, flip_label_map="auto"`` turns it on
and swaps the labels of the class pairs whose names differ only by "left" ↔ "right"
(``annotations.derive_flip_label_map``). A class whose direction its name does not spell out
(or that names one side with no mirrored partner) keeps its label under the flip and may be
mislabelled by it, which is why flipping stays opt-in.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from datamodules.annotated import AnnotatedVideoDataModule
from datamodules.annotations import (
    AnnotationError,
    Entry,
    find_annotation,
    read_json,
    read_lines,
    read_name_list,
)
from datamodules.base import Split

__all__ = ["SomethingSomethingV1DataModule", "SomethingSomethingV2DataModule",
           "template_to_class"]

_SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


def template_to_class(template: str) -> str:
    """SSv2 template → class name: ``"Putting [something] on [a surface]"`` → ``"Putting
    something on a surface"`` (the labels file spells classes without the brackets)."""
    return " ".join(re.sub(r"[\[\]]", "", template).split())


class _SomethingBase(AnnotatedVideoDataModule):
    """What v1 and v2 share: file lookup with or without the release prefix, ``test_split``."""

    prefix = ""

    def __init__(self, data_dir: str, test_split: Literal["val", "test"], **kwargs: Any) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if test_split not in ("val", "test"):
            raise ValueError(f"test_split must be 'val' or 'test', got {test_split!r}")
        self.test_split = test_split

    def source_of(self, split: Split) -> Split:
        return self.test_split if split == "test" else split

    def annotation_file(self, stem: str, ext: str, what: str) -> str:
        """``<prefix><stem>.<ext>`` or ``<stem>.<ext>`` under ``annotation_dir``."""
        return str(find_annotation(self.annotation_dir,
                                   [f"{self.prefix}{stem}.{ext}", f"{stem}.{ext}"], what))


class SomethingSomethingV1DataModule(_SomethingBase):
    """Something-Something v1: 174 classes, JPEG frame folders ``<id>/00001.jpg…``.

    Annotations: ``something-something-v1-labels.csv`` (one class per line; the line order is
    the label index), ``something-something-v1-train.csv`` / ``-validation.csv`` with rows
    ``id;label`` (labels may hold commas; only the first ``;`` separates), ``-test.csv`` with
    ids only. The ``something-something-v1-`` prefix may be absent.

    Frame folders are found at ``data_dir/<id>`` (or by name anywhere below, e.g. in
    ``20bn-something-something-v1/``); each folder's frames are counted once in ``setup()``
    (one directory listing), so the records carry ``num_frames`` and training never probes.

    Args:
        data_dir: the frame folders.
        test_split: ``"val"`` (default: the test labels were never released) or ``"test"``
            (unlabelled records, for predictions).
        flip: off by default (mirror-sensitive classes); see the module docstring.
        video_backend: ``"frames"`` by default; ``decoder_options`` sets the file name
            template (``{"template": "{:05d}.jpg"}`` is the default).
        annotation_dir / classes_subset / max_per_class / subset_seed / on_missing: see
            ``AnnotatedVideoDataModule``.
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    prefix = "something-something-v1-"

    def __init__(
        self,
        data_dir: str,
        test_split: Literal["val", "test"] = "val",
        flip: bool = False,
        video_backend: Literal["pyav", "torchcodec", "frames", "flow"] = "frames",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            data_dir=data_dir,
            test_split=test_split,
            flip=flip,
            video_backend=video_backend,
            **kwargs,
        )

    def read_classes(self) -> list[str]:
        return read_name_list(self.annotation_file("labels", "csv", "SSv1 labels file"))

    def read_entries(self, split: Split) -> list[Entry]:
        source = _SPLIT_NAMES[split]
        path = self.annotation_file(source, "csv", f"SSv1 {source} split file")
        index = self.class_index
        entries = []
        for line, text in read_lines(path):
            video_id, sep, label_name = text.partition(";")
            video_id, label_name = video_id.strip(), label_name.strip()
            where = f"{path}:{line}"
            if not video_id:
                raise AnnotationError(f"{where}: expected 'id;label', got {text!r}")
            if not sep and source != "test":
                raise AnnotationError(f"{where}: expected 'id;label', got {text!r} (no ';')")
            label = index.label(label_name, where) if label_name else -1
            entries.append(Entry(name=video_id, label=label, where=where))
        return entries


class SomethingSomethingV2DataModule(_SomethingBase):
    """Something-Something v2: 174 classes, ``<id>.webm`` videos.

    Annotations: ``something-something-v2-labels.json`` (``{class: "index"}``; the index is the
    label), ``something-something-v2-{train,validation,test}.json`` (lists of
    ``{id, label, template, placeholders}``; the class is the ``template`` without its
    ``[ ]`` brackets), optionally ``something-something-v2-test-answers.csv`` (``id;class``)
    that labels the test list. The prefix may be absent (``labels.json``, ``train.json``, …).

    Mini-SSV2 (unified-analysis paper: half of the classes, seeded): ``classes_subset=87``.

    Args:
        data_dir: the videos (``20bn-something-something-v2/`` or its parent).
        test_split: ``"val"`` (default) or ``"test"`` (labelled only with the answers file).
        flip: off by default (mirror-sensitive classes); see the module docstring.
        annotation_dir / classes_subset / max_per_class / subset_seed / on_missing: see
            ``AnnotatedVideoDataModule``.
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    prefix = "something-something-v2-"

    def __init__(
        self,
        data_dir: str,
        test_split: Literal["val", "test"] = "val",
        flip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            data_dir=data_dir,
            test_split=test_split,
            flip=flip,
            **kwargs,
        )

    def read_classes(self) -> list[str]:
        path = self.annotation_file("labels", "json", "SSv2 labels file")
        data = read_json(path)
        if not isinstance(data, dict):
            raise AnnotationError(f"{path}: expected an object {{class: index}}, got "
                                  f"{type(data).__name__}")
        by_index: dict[int, str] = {}
        for name, value in data.items():
            try:
                index = int(value)
            except (TypeError, ValueError):
                raise AnnotationError(f"{path}: class {name!r} has index {value!r}, not a "
                                      "number") from None
            if index in by_index:
                raise AnnotationError(f"{path}: index {index} given to both "
                                      f"{by_index[index]!r} and {name!r}")
            by_index[index] = name
        if sorted(by_index) != list(range(len(by_index))):
            raise AnnotationError(f"{path}: indices must be 0..{len(by_index) - 1}, got gaps")
        return [by_index[i] for i in range(len(by_index))]

    def _test_answers(self) -> dict[str, str]:
        """``{id: class}`` from the test answers file, if the user has it."""
        try:
            path = self.annotation_file("test-answers", "csv", "SSv2 test answers")
        except AnnotationError:
            return {}
        answers = {}
        for _, text in read_lines(path):
            video_id, _, label = text.partition(";")
            answers[video_id.strip()] = label.strip()
        return answers

    def read_entries(self, split: Split) -> list[Entry]:
        source = _SPLIT_NAMES[split]
        path = self.annotation_file(source, "json", f"SSv2 {source} list")
        items = read_json(path)
        if not isinstance(items, list):
            raise AnnotationError(f"{path}: expected a list of {{id, label, template, "
                                  f"placeholders}}, got {type(items).__name__}")
        answers = self._test_answers() if source == "test" else {}
        index = self.class_index
        entries = []
        for position, item in enumerate(items):
            if not isinstance(item, dict) or "id" not in item:
                raise AnnotationError(f"{path}: entry {position} has no 'id': {item!r:.80}")
            video_id = str(item["id"]).strip()
            where = f"{path}: entry {position} (id {video_id})"
            if "template" in item:
                name = template_to_class(str(item["template"]))
            elif video_id in answers:
                name = answers[video_id]
            elif source == "test":
                name = ""
            else:
                raise AnnotationError(f"{where}: no 'template' to take the class from")
            label = index.label(name, where) if name else -1
            entries.append(Entry(name=f"{video_id}.webm", label=label, where=where))
        return entries
