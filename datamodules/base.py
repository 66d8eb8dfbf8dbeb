"""Shared LightningDataModule: the arguments every source has, and the loaders built from them.

Sources that read published annotation files build on ``datamodules.annotated``.
"""

from __future__ import annotations

import os
import warnings
from abc import abstractmethod
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from datamodules.annotations import derive_flip_label_map
from datamodules.dataset import OnError, VideoDataset, collate_samples
from datamodules.decoders import Decoder, get_decoder
from datamodules.normalize import IMAGENET, Normalization
from datamodules.predict import PredictPaths, predict_records
from datamodules.randomness import EpochSampler, default_seed, derived_generator
from datamodules.records import VideoRecord
from datamodules.reports import UnreadableLog, split_summary
from datamodules.transforms import ClipTransform, ClipViews, TestViews, TrainTransform

Split = Literal["train", "val", "test"]

# torchdata 0.11 calls a torch API that torch 2.14 deprecates, on every StatefulDataLoader
warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)


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
        flip: random horizontal flip in training; ``False`` also switches off the flip of an
            injected ``train_transform`` (a dataset whose labels are mirror-sensitive).
        flip_label_map: label swaps under horizontal flip (mirror-sensitive classes), both
            directions listed; ``"auto"`` derives them from class names that differ only by
            "left" ↔ "right" (``annotations.derive_flip_label_map``).
        train_transform: the train transform (a ``datamodules.transforms.ClipTransform``, by
            ``class_path`` in YAML); ``None`` builds the default random-resized crop
            ``TrainTransform(train_crop_size, short_side, scale=train_scale, flip=flip)`` — the
            shortcut arguments. An injected transform without a ``crop_size`` gets
            ``train_crop_size``, and ``flip_label_map`` when it has none.
        test_views: the test views (a ``datamodules.transforms.ClipViews``); ``None`` builds
            ``TestViews(test_crop_size, short_side, test_crops)``; views without a crop side
            get ``test_crop_size``. Validation always takes one centre crop of the centre clip
            (``make_val_views``). Views whose shape depends on the video (``FullFrameViews``)
            are tested one video per batch.
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
        normalize: per-channel ``mean`` / ``std`` (in [0, 1] units) that every batch is
            normalised with on the device, after the transfer (``on_after_batch_transfer``):
            ImageNet's by default; ``None`` hands the model raw ``uint8`` video.
        predict_paths: new videos for ``predict`` (``datamodules.predict``): a folder (every
            video below it), a glob pattern, a text file listing paths, or a list of these;
            ``None`` predicts the test split. Results name videos by their path relative to
            :meth:`video_root`.
        decoder_options: keyword arguments for the backend (``get_decoder(video_backend,
            **decoder_options)``), e.g. ``{"template": "img_{:05d}.jpg", "start_index": 1}``
            for frame folders or ``{"thread_count": 1}`` for PyAV.
    """

    def __init__(
        self,
        data_dir: str,
        sampling: Literal["uniform", "dense"] = "uniform",
        num_frames: PositiveInt = 8,
        frame_interval: PositiveInt = 1,
        test_clips: PositiveInt = 1,
        test_crops: Literal[1, 3, 5, 10] = 1,
        train_crop_size: PositiveInt = 224,
        test_crop_size: PositiveInt = 224,
        short_side: PositiveInt | None = 256,
        train_scale: tuple[ClosedUnitInterval, ClosedUnitInterval] = (0.25, 1.0),
        flip: bool = True,
        flip_label_map: dict[int, int] | Literal["auto"] | None = None,
        train_transform: ClipTransform | None = None,
        test_views: ClipViews | None = None,
        batch_size: PositiveInt = 8,
        num_workers: NonNegativeInt = 4,
        video_backend: Literal["pyav", "torchcodec", "frames", "flow"] = "pyav",
        on_error: OnError = "warn",
        decoder_options: dict[str, Any] | None = None,
        flow_length: int | None = None,
        normalize: Normalization | None = IMAGENET,
        predict_paths: PredictPaths | None = None,
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
        self.train_transform = train_transform
        self.test_views = test_views
        # plain ints: the loader's state (saved in checkpoints) keeps them
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.video_backend = video_backend
        self.on_error = on_error
        self.decoder_options = dict(decoder_options or {})
        if flow_length is None:
            flow_length = 5 if sampling == "uniform" else 1
        self.flow_length = flow_length
        self.normalize = normalize
        self.predict_paths = predict_paths
        self._predict_root: str | None = None
        if video_backend == "flow" and normalize == IMAGENET:
            # flow stacks (2·L channels, 128 = no motion) have statistics of their own
            from datamodules.flow import FLOW_MEAN, FLOW_STD

            self.normalize = Normalization((FLOW_MEAN,), (FLOW_STD,))
        self.datasets: dict[Split, VideoDataset] = {}
        #: every unreadable video met in this run, named once (all splits share it)
        self.unreadable_log = UnreadableLog()

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
    def test_views_per_clip(self) -> int:
        """Views of each test clip (spatial crops; 1 for full-frame views)."""
        return self.make_test_views().views_per_clip

    @property
    def num_test_views(self) -> int:
        return self.test_clips * self.test_views_per_clip

    def make_train_transform(self) -> ClipTransform:
        """``train_transform`` with this datamodule's settings filled in, or the default."""
        transform = self.train_transform or TrainTransform(
            self.train_crop_size, self.short_side, scale=self.train_scale)
        return transform.bound(self.train_crop_size, self.flip, self.resolved_flip_label_map(),
                               flow=self.flow)

    def make_test_views(self) -> ClipViews:
        """``test_views``, or the ``test_crops`` square crops of ``test_crop_size``; told
        whether they cut RGB frames or flow stacks (flow mirrors negate x), and given
        ``test_crop_size`` where they have no crop side."""
        views = self.test_views or TestViews(self.test_crop_size, self.short_side,
                                             self.test_crops)
        return views.bound(self.test_crop_size, self.flow)

    def make_val_views(self) -> ClipViews:
        """Validation's one view: the centre crop, of the injected ``test_views``' geometry
        when they are ``TestViews`` (s3d's 256 × 256 resize), else of ``test_crop_size`` at
        ``short_side``."""
        views = self.test_views
        if isinstance(views, TestViews):
            views = TestViews(views.crop_size, views.short_side, 1, views.size)
        else:
            views = TestViews(self.test_crop_size, self.short_side, 1)
        return views.bound(self.test_crop_size, self.flow)

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

    @property
    def data_root(self) -> str:
        """The folder the records' relative paths start from (``data_dir``)."""
        return self.data_dir

    def video_root(self, split: str) -> str:
        """Where result files' relative video paths start: ``predict_paths``' folder for
        ``predict`` on new videos, else :attr:`data_root`."""
        if split == "predict" and self._predict_root is not None:
            return self._predict_root
        return self.data_root

    def make_dataset(self, split: Split | Literal["predict"]) -> VideoDataset:
        if split == "predict":
            if self.predict_paths is None:
                if "test" not in self.datasets:  # the test split, shared with `test`
                    self.datasets["test"] = self.make_dataset("test")
                return self.datasets["test"]
            frames = self.video_backend == "frames"
            self._predict_root, records = predict_records(self.predict_paths, frames=frames)
            split = "test"  # evaluated exactly as test videos are (every test view)
        else:
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
            train_transform=self.make_train_transform() if split == "train" else None,
            # validation: one centre crop, however many views the test takes
            test_views=self.make_test_views() if split == "test" else self.make_val_views(),
            on_error=self.on_error,
            unreadable_log=self.unreadable_log,
        )

    def split_counts(self, split: Split) -> dict[str, int]:
        """What the summary says besides classes and videos (``missing``, ``ambiguous``)."""
        return {}

    def summary(self, split: Split) -> str:
        """One line: the split's classes, videos, missing and unreadable-so-far counts."""
        dataset = self.datasets[split]
        labels = dataset.records.labels
        return split_summary(type(self).__name__, split,
                             classes=len(np.unique(labels[labels >= 0])),
                             videos=len(dataset), unreadable=len(self.unreadable_log),
                             **self.split_counts(split))

    def setup(self, stage: str | None = None) -> None:
        wanted: dict[str | None, tuple[Split, ...]] = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("predict",),
        }
        for split in wanted.get(stage, ("train", "val", "test")):
            if split not in self.datasets:
                self.datasets[split] = self.make_dataset(split)
                rank_zero_info(self.summary(split))

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # failures met in DataLoader workers reach the main process in the batch: name them
        # here, once per run
        if isinstance(batch, dict):
            self.unreadable_log.report_batch(batch)
        return batch

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            self.datasets[split] = self.make_dataset(split)
        dataset = self.datasets[split]
        # views whose shape follows the video's (full frames) do not stack across videos
        one_video = split in ("test", "predict") and not dataset.test_views.fixed_size
        return DataLoader(
            dataset,
            batch_size=1 if one_video else self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=shuffle,
            collate_fn=collate_samples,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            # a loader without its own generator draws its worker seed from the global RNG,
            # shifting dropout's draws by whether (and how often) evaluation ran
            generator=derived_generator(default_seed(), "loader", split),
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Normalise the batch's ``uint8`` video on the device (``normalize``): any model gets
        float input, and workers only ever move ``uint8``."""
        return batch if self.normalize is None else self.normalize.apply(batch)

    def train_dataloader(self) -> StatefulDataLoader:
        """Shuffled batches whose order and augmentation depend on (seed, epoch, index) only
        (``datamodules.randomness``); a ``StatefulDataLoader``, so a checkpoint taken
        mid-epoch resumes with the batches not yet seen, also under DDP (the sampler deals
        this rank's share of the epoch: the trainer's ``world_size`` and ``global_rank``;
        with ``Trainer(use_distributed_sampler=False)`` every rank gets the whole epoch, as
        Lightning leaves a loader it does not shard)."""
        if "train" not in self.datasets:
            self.datasets["train"] = self.make_dataset("train")
        dataset = self.datasets["train"]
        seed = default_seed()
        # under DDP the sampler shards by itself (Lightning keeps a DistributedSampler as it is),
        # so the loader's saved state holds the epoch and position (datamodules.randomness)
        trainer = self.trainer
        ranks = ({"num_replicas": trainer.world_size, "rank": trainer.global_rank}
                 if trainer is not None and _shards_for_ddp(trainer) else {})
        return StatefulDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(dataset), shuffle=True, seed=seed, **ranks),
            num_workers=self.num_workers,
            drop_last=True,
            collate_fn=collate_samples,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            # worker seeds from the loader's own generator: the global RNG (dropout) is left
            # alone, as it must be for a resumed run to draw what an uninterrupted one draws
            generator=derived_generator(seed, "loader", "train"),
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)


def _shards_for_ddp(trainer: pl.Trainer) -> bool:
    """Whether the trainer shards training data (``Trainer(use_distributed_sampler=…)``, kept
    only on its private connector; ``True`` where that is not there)."""
    connector = getattr(trainer, "_accelerator_connector", None)
    return bool(getattr(connector, "use_distributed_sampler", True))
