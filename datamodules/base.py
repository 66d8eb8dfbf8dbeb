"""Shared LightningDataModule: the arguments every source has, and the loaders built from them."""

from __future__ import annotations

import os
import random
from abc import abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from datamodules.annotations import (
    VIDEO_EXTENSIONS,
    AnnotationError,
    Entry,
    VideoIndex,
    derive_flip_label_map,
    lookup_class,
    loose_index,
    read_name_list,
)
from datamodules.dataset import OnError, VideoDataset
from datamodules.decoders import DecodeError, Decoder, get_decoder
from datamodules.records import VideoRecord
from datamodules.transforms import TestViews, TrainTransform

Split = Literal["train", "val", "test"]


class VideoDataModule(pl.LightningDataModule):
    """Base class of every datamodule; a subclass only says which classes and records exist.

    Subclasses implement ``classes`` (index = label id) and ``build_records(split)``.

    Args:
        data_dir: videos or frame folders.
        sampling: ``"uniform"`` (TSN segments, one frame per segment) or ``"dense"``
            (``num_frames`` consecutive frames ``frame_interval`` apart).
        num_frames: frames per clip (segments for uniform sampling).
        frame_interval: stride between frames of a dense clip.
        test_clips: temporal clips per test video.
        test_crops: spatial crops per test clip (1, 3, 5 or 10).
        train_crop_size / test_crop_size: side of the square network input.
        short_side: frames are resized so their shorter side is this (``None``: keep).
        train_scale: area range of the random-resized crop.
        flip: random horizontal flip in training.
        flip_label_map: label swaps under horizontal flip (mirror-sensitive classes), both
            directions listed; ``"auto"`` derives them from class names that differ only by
            "left" ↔ "right" (``annotations.derive_flip_label_map``).
        batch_size / num_workers: loader settings (test batches hold ``V`` views per video).
        video_backend: ``"pyav"`` (default), ``"torchcodec"``, ``"frames"``, or ``"flow"`` for
            the optical-flow stream: folders of ``flow_x_00001.jpg`` / ``flow_y_00001.jpg``
            (``python -m datamodules.prepare flow``), found like frame folders; clips are
            ``uint8 [2 · flow_length, T, H, W]`` (channels ``x1, y1, x2, y2, …``), the same test
            views as RGB, and a flip negates x.
        flow_length: flow pairs stacked per sampled frame with ``video_backend="flow"``;
            ``None``: 5 for uniform sampling (TSN §3.2: 10 channels per segment), 1 for dense
            (I3D / S3D flow: 2-channel clips).
        on_error: ``"warn"`` skips unreadable videos with a warning, ``"raise"`` stops.
        decoder_options: keyword arguments for the backend (``get_decoder(video_backend,
            **decoder_options)``), e.g. ``{"template": "img_{:05d}.jpg", "start_index": 1}``
            for frame folders or ``{"thread_count": 1}`` for PyAV.
    """

    def __init__(
        self,
        data_dir: str,
        sampling: Literal["uniform", "dense"] = "uniform",
        num_frames: int = 8,
        frame_interval: int = 1,
        test_clips: int = 1,
        test_crops: Literal[1, 3, 5, 10] = 1,
        train_crop_size: int = 224,
        test_crop_size: int = 224,
        short_side: int | None = 256,
        train_scale: tuple[float, float] = (0.25, 1.0),
        flip: bool = True,
        flip_label_map: dict[int, int] | Literal["auto"] | None = None,
        batch_size: int = 8,
        num_workers: int = 4,
        video_backend: Literal["pyav", "torchcodec", "frames", "flow"] = "pyav",
        on_error: OnError = "warn",
        decoder_options: dict[str, Any] | None = None,
        flow_length: int | None = None,
    ) -> None:
        super().__init__()
        if sampling not in ("uniform", "dense"):
            raise ValueError(f"sampling must be 'uniform' or 'dense', got {sampling!r}")
        for name, value in [("num_frames", num_frames), ("frame_interval", frame_interval),
                            ("test_clips", test_clips), ("batch_size", batch_size)]:
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if flow_length is not None and flow_length < 1:
            raise ValueError(f"flow_length must be >= 1, got {flow_length}")
        if test_crops not in (1, 3, 5, 10):
            raise ValueError(f"test_crops must be 1, 3, 5 or 10, got {test_crops}")
        if isinstance(flip_label_map, str) and flip_label_map != "auto":
            raise ValueError(f"flip_label_map must be a dict, 'auto' or None, got "
                             f"{flip_label_map!r}")
        self.data_dir = os.path.expanduser(str(data_dir))
        self.sampling = sampling
        self.num_frames = num_frames
        self.frame_interval = frame_interval
        self.test_clips = test_clips
        self.test_crops = test_crops
        self.train_crop_size = train_crop_size
        self.test_crop_size = test_crop_size
        self.short_side = short_side
        self.train_scale = tuple(train_scale)
        self.flip = flip
        self.flip_label_map = flip_label_map
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.video_backend = video_backend
        self.on_error = on_error
        self.decoder_options = dict(decoder_options or {})
        if flow_length is None:
            flow_length = 5 if sampling == "uniform" else 1
        self.flow_length = flow_length
        self.datasets: dict[Split, VideoDataset] = {}

    # ---- what a source must say ------------------------------------------------------------
    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """Class names; position = label id."""

    @abstractmethod
    def build_records(self, split: Split) -> list[VideoRecord]:
        """The labelled videos of ``split``."""

    # ---- shared machinery --------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """``len(classes)``: what the head needs (LightningCLI links it to the model)."""
        return len(self.classes)

    @property
    def num_test_views(self) -> int:
        return self.test_clips * self.test_crops

    @property
    def flow(self) -> bool:
        """Whether this is the optical-flow stream (``video_backend="flow"``)."""
        return self.video_backend == "flow"

    @property
    def folders(self) -> bool:
        """Whether videos are folders of images (frames or flow), not files."""
        return self.video_backend in ("frames", "flow")

    @property
    def in_channels(self) -> int:
        """Channels of a clip: 3 (RGB) or ``2 · flow_length`` (flow)."""
        return 2 * self.flow_length if self.flow else 3

    def make_decoder(self) -> Decoder:
        """The backend with ``decoder_options`` (one per dataset: caches are per instance)."""
        options = dict(self.decoder_options)
        if self.flow:
            options.setdefault("flow_length", self.flow_length)
        return get_decoder(self.video_backend, **options)

    def resolved_flip_label_map(self) -> dict[int, int]:
        """``flip_label_map`` as label pairs (``"auto"`` resolved against ``classes``)."""
        if self.flip_label_map == "auto":
            return derive_flip_label_map(self.classes)
        return {int(k): int(v) for k, v in (self.flip_label_map or {}).items()}

    def make_dataset(self, split: Split) -> VideoDataset:
        records = self.build_records(split)
        if not records:
            raise ValueError(
                f"{type(self).__name__}: the {split!r} split is empty ({self.data_dir})")
        mode: Split = split
        return VideoDataset(
            records,
            self.make_decoder(),
            mode=mode,
            sampling=self.sampling,
            num_frames=self.num_frames,
            frame_interval=self.frame_interval,
            test_clips=self.test_clips,
            train_transform=TrainTransform(
                self.train_crop_size,
                self.short_side,
                scale=self.train_scale,
                flip=self.flip,
                flip_label_map=self.resolved_flip_label_map(),
                flow=self.flow,
            ),
            test_views=TestViews(
                self.test_crop_size, self.short_side, self.test_crops if split == "test" else 1,
                flow=self.flow,
            ),
            on_error=self.on_error,
        )

    def setup(self, stage: str | None = None) -> None:
        wanted: dict[str | None, tuple[Split, ...]] = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
        }
        for split in wanted.get(stage, ("train", "val", "test")):
            if split not in self.datasets:
                self.datasets[split] = self.make_dataset(split)

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            self.datasets[split] = self.make_dataset(split)
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=shuffle,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


# int first: jsonargparse tries union members in order, and "87" on a command line is a count
ClassesSubset = int | list[str] | str | None
MaxPerClass = int | dict[str, int] | None

# how many missing names a report shows: enough to recognise a pattern, short enough to read
_SHOWN_MISSING = 5


class AnnotatedVideoDataModule(VideoDataModule):
    """Base of the datamodules that read a published dataset's annotation files.

    A subclass says what its annotation files contain:

    - ``read_classes()``: the full class list, in the published index order;
    - ``read_entries(split)``: the videos of a split as ``Entry(name, label, where)``;
    - optionally ``source_of(split)``: which list a split reads (``test`` → ``val``, …);

    and this class does the rest, identically for every dataset: class subsets and per-class
    caps (Mini-Kinetics-200, Mini-SSV2), locating each video by path or by name anywhere under
    ``data_dir``, counting the frames of frame folders once, and reporting missing videos once
    per split (a count and the first few names) before skipping them.

    Args:
        data_dir: the videos or frame folders, laid out as the official archive unpacks (or any
            layout: a video not at its listed path is looked up by name anywhere below).
        annotation_dir: the official annotation / split files (default ``data_dir``); they may
            sit in a sub-folder up to two levels down, as the archives ship them.
        classes_subset: train on some classes only: a list of class names, a file with one name
            per line (a relative path is also looked up in ``annotation_dir``), or an int ``N``
            for ``N`` classes drawn with ``subset_seed``. Kept classes
            keep the dataset's class order and are relabelled ``0..N-1``.
        max_per_class: keep at most this many (present) videos per class: an int for every
            split or ``{split: n}`` (e.g. ``{"train": 400, "val": 25}``); drawn with
            ``subset_seed``, listed order kept.
        subset_seed: seed of the two draws above (the same seed gives the same subset).
        on_missing: ``"warn"`` (default) reports missing videos once and skips them;
            ``"raise"`` stops with the same report.
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    def __init__(
        self,
        data_dir: str,
        annotation_dir: str | None = None,
        classes_subset: ClassesSubset = None,
        max_per_class: MaxPerClass = None,
        subset_seed: int = 0,
        on_missing: Literal["warn", "raise"] = "warn",
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if on_missing not in ("warn", "raise"):
            raise ValueError(f"on_missing must be 'warn' or 'raise', got {on_missing!r}")
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
        self.annotation_dir = os.path.expanduser(str(annotation_dir or self.data_dir))
        self.classes_subset = classes_subset
        self.max_per_class = max_per_class
        self.subset_seed = subset_seed
        self.on_missing = on_missing
        self.missing: dict[str, list[str]] = {}  # split -> names of the videos not found
        self._all_classes: list[str] | None = None
        self._subset: tuple[list[str], dict[int, int]] | None = None
        self._index: VideoIndex | None = None
        self._located: dict[str, list[VideoRecord]] = {}  # source -> records before the cap

    # ---- what a dataset must say ----------------------------------------------------------
    @abstractmethod
    def read_classes(self) -> list[str]:
        """The dataset's full class list; position = label in ``read_entries``."""

    @abstractmethod
    def read_entries(self, split: Split) -> list[Entry]:
        """The videos the annotation lists for ``split`` (labels index ``read_classes()``)."""

    # ---- classes ----------------------------------------------------------------------------
    @property
    def all_classes(self) -> list[str]:
        """Every class of the dataset (before ``classes_subset``), read once and cached."""
        if self._all_classes is None:
            names = self.read_classes()
            if not names:
                raise AnnotationError(f"{type(self).__name__}: the class list is empty "
                                      f"(annotation_dir={self.annotation_dir})")
            twice = sorted(name for name, count in Counter(names).items() if count > 1)
            if twice:
                raise AnnotationError(f"{type(self).__name__}: class names listed twice: "
                                      f"{twice[:5]}")
            self._all_classes = names
        return self._all_classes

    @property
    def classes(self) -> list[str]:
        """Class names (index = label id), after ``classes_subset``; available before
        ``setup()`` (only the class list is read), so LightningCLI can link ``num_classes``."""
        return self._class_subset()[0]

    def _class_subset(self) -> tuple[list[str], dict[int, int]]:
        """``(kept names, {full label: new label})``."""
        if self._subset is None:
            full = self.all_classes
            chosen = self._choose_classes(full)
            self._subset = ([full[i] for i in chosen], {old: new for new, old in
                                                        enumerate(chosen)})
        return self._subset

    def _choose_classes(self, full: list[str]) -> list[int]:
        """Full-list labels of the kept classes, sorted (the dataset's order is kept)."""
        subset = self.classes_subset
        if subset is None:
            return list(range(len(full)))
        if isinstance(subset, str) and subset.isdigit() and not os.path.exists(subset):
            subset = int(subset)  # a count that reached us as text
        if isinstance(subset, int):
            if subset > len(full):
                raise ValueError(f"classes_subset={subset} but the dataset has {len(full)} "
                                 "classes")
            return sorted(random.Random(self.subset_seed).sample(range(len(full)), subset))
        if isinstance(subset, str):
            path = os.path.expanduser(subset)
            if not os.path.isfile(path) and not os.path.isabs(path):
                # a relative name may refer to a list kept beside the annotations
                path = os.path.join(self.annotation_dir, path)
            if not os.path.isfile(path):
                raise AnnotationError(f"classes_subset file not found: {subset} (also looked "
                                      f"in {self.annotation_dir})")
            names, source = read_name_list(path), path
        else:
            names, source = list(subset), "classes_subset"
        index = {name: label for label, name in enumerate(full)}
        loose = loose_index(index)
        chosen = {lookup_class(name, index, f"{source} (entry {i + 1})", loose=loose)
                  for i, name in enumerate(names)}
        if not chosen:
            raise AnnotationError(f"{source}: classes_subset is empty")
        return sorted(chosen)

    # ---- locating videos --------------------------------------------------------------------
    @property
    def index(self) -> VideoIndex:
        """Videos (or frame folders, for the ``frames`` backend) by name under ``data_dir``."""
        if self._index is None:
            self._index = VideoIndex(self.data_dir, frames=self.folders)
        return self._index

    def find_video(self, name: str) -> str | None:
        """Path of the video an annotation calls ``name``, or ``None`` when it is not there.

        ``data_dir/name`` is tried first (one ``stat``: the official layout costs nothing
        more); when it is not there, the name without folder and extension is looked up in
        ``index`` (one walk of ``data_dir`` on first use, then a dict lookup). With the
        ``frames`` backend the video is the folder named after the file.
        """
        frames = self.folders
        direct = os.path.join(self.data_dir, name)
        root, ext = os.path.splitext(direct)
        if frames:
            direct = root if ext.lower() in VIDEO_EXTENSIONS else direct
            if os.path.isdir(direct):
                return direct
        elif ext.lower() in VIDEO_EXTENSIONS and os.path.isfile(direct):
            # a bare name (Kinetics) is never a file as such: skip the stat, go to the index
            return direct
        stem = os.path.basename(name.replace("\\", "/"))
        # strip only a real video extension: ids and names may contain dots of their own
        root, ext = os.path.splitext(stem)
        if ext.lower() in VIDEO_EXTENSIONS:
            stem = root
        return self.index.find(stem)

    def locate(self, entry: Entry, label: int) -> VideoRecord | None:
        """The record of ``entry`` with ``label``, or ``None`` when its video is missing.

        Subclasses override this for datasets whose file names need more than ``find_video``
        (Kinetics: trimmed clip or untrimmed source).
        """
        path = self.find_video(entry.name)
        if path is None:
            return None
        return VideoRecord(path=path, label=label, start_sec=entry.start_sec,
                           end_sec=entry.end_sec)

    # ---- records ------------------------------------------------------------------------------
    def source_of(self, split: Split) -> Split:
        """The list ``split`` reads. Splits with the same source (UCF101's ``val`` and ``test``
        are both its test list) share one set of records and one missing-video report."""
        return split

    def build_records(self, split: Split) -> list[VideoRecord]:
        """Entries → class subset → located records (missing reported) → per-class cap."""
        source = self.source_of(split)
        if source not in self._located:
            self._located[source] = self._locate_all(source)
        return self._cap_per_class(split, source, self._located[source])

    def _locate_all(self, split: Split) -> list[VideoRecord]:
        entries = self.read_entries(split)
        listed = len(entries)
        _, relabel = self._class_subset()
        if self.classes_subset is not None:
            # unlabelled entries (-1) cannot be filtered by class; they stay
            entries = [e for e in entries if e.label < 0 or e.label in relabel]
        counter = self.make_decoder() if self.folders else None
        records: list[VideoRecord] = []
        missing: list[Entry] = []
        for entry in entries:
            record = self.locate(entry, relabel.get(entry.label, -1))
            if record is not None and counter is not None and record.num_frames is None:
                record = self._with_frame_count(record, counter)
            if record is None:
                missing.append(entry)
            else:
                records.append(record)
        if missing:
            self._report_missing(split, missing, len(entries))
        if not records:
            where = f" (first: {entries[0].where})" if entries and entries[0].where else ""
            raise ValueError(
                f"{type(self).__name__}: the {split!r} split is empty: {listed} videos listed"
                f"{where}, {len(entries)} in the kept classes, none found under "
                f"{self.data_dir} (annotations: {self.annotation_dir})")
        return records

    @staticmethod
    def _with_frame_count(record: VideoRecord, counter: Decoder) -> VideoRecord | None:
        """``record`` with ``num_frames`` counted now (one directory listing), so training
        never probes a frame folder; ``None`` when the folder holds no frames."""
        try:
            count = counter.num_frames(record)
        except DecodeError:
            return None
        return VideoRecord(path=record.path, label=record.label, num_frames=count,
                           start_sec=record.start_sec, end_sec=record.end_sec)

    def _report_missing(self, split: str, missing: Sequence[Entry], total: int) -> None:
        """One message per split: how many, and the first few names with their annotation."""
        self.missing[split] = [e.name for e in missing]
        shown = ", ".join(f"{e.name} ({e.where})" if e.where else e.name
                          for e in missing[:_SHOWN_MISSING])
        more = ", …" if len(missing) > _SHOWN_MISSING else ""
        what = ("frame folders not found or empty" if self.folders else "videos not found")
        message = (f"{type(self).__name__}: {len(missing)} of {total} {split} {what} under "
                   f"{self.data_dir}; skipped. First: {shown}{more}")
        if self.on_missing == "raise":
            raise FileNotFoundError(message)
        # rank zero only: under DDP every rank builds the same records
        rank_zero_warn(message, stacklevel=7)  # points at the caller of build_records

    def _cap_per_class(
        self, split: str, source: str, records: list[VideoRecord]
    ) -> list[VideoRecord]:
        """At most ``max_per_class[split]`` records per class, drawn per ``source`` (so ``val``
        and a ``test`` that reads the same list get the same videos)."""
        cap = self.max_per_class
        if isinstance(cap, Mapping):
            cap = cap.get(split)
        if cap is None:
            return records
        by_class: dict[int, list[int]] = {}
        for position, record in enumerate(records):
            by_class.setdefault(record.label, []).append(position)
        # one generator per split and class: the draw for one class does not depend on others
        keep: set[int] = set()
        for label, positions in by_class.items():
            if len(positions) <= cap:
                keep.update(positions)
            else:
                rng = random.Random(f"{self.subset_seed}-{source}-{label}")
                keep.update(rng.sample(positions, cap))
        return [r for position, r in enumerate(records) if position in keep]
