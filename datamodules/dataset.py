"""The Dataset every datamodule uses: record → indices → decoded frames → clip or test views."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor
from torch.utils.data import Dataset

from datamodules.decoders import DecodeError, Decoder
from datamodules.records import VideoRecord
from datamodules.sampling import clip_indices
from datamodules.transforms import TestViews, TrainTransform

log = logging.getLogger(__name__)

Mode = Literal["train", "val", "test"]
OnError = Literal["warn", "raise"]


class VideoDataset(Dataset):
    """Samples frame indices, decodes only those frames and applies the CPU transforms.

    A sample is a dict:

    - ``video``: ``uint8`` ``[C, T, H, W]`` in ``train``/``val`` mode (one clip; val takes the
      centre clip and centre crop), ``[V, C, T, H, W]`` in ``test`` mode with
      ``V = test_clips × test_crops`` ordered clip-major (view ``0`` is the centre crop of the
      first clip).
    - ``label``: class index; ``index``: position in ``records`` (lets evaluation count every
      video once under DDP); ``skipped``: how many unreadable records were replaced to produce
      this sample (summed and logged by the LightningModule).

    A record that cannot be decoded is, by default (``on_error="warn"``), reported once by name
    and replaced by the next readable record, so a corrupt file never stops a long run;
    ``on_error="raise"`` makes it fatal.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        decoder: Decoder,
        *,
        mode: Mode,
        sampling: Literal["uniform", "dense"],
        num_frames: int,
        frame_interval: int = 1,
        test_clips: int = 1,
        train_transform: TrainTransform | None = None,
        test_views: TestViews | None = None,
        on_error: OnError = "warn",
    ) -> None:
        if mode == "train" and train_transform is None:
            raise ValueError("mode='train' needs a train_transform")
        if mode != "train" and test_views is None:
            raise ValueError(f"mode={mode!r} needs test_views")
        if on_error not in ("warn", "raise"):
            raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}")
        self.records = list(records)
        self.decoder = decoder
        self.mode = mode
        self.sampling = sampling
        self.num_frames = num_frames
        self.frame_interval = frame_interval
        self.test_clips = test_clips if mode == "test" else 1
        self.train_transform = train_transform
        self.test_views = test_views
        self.on_error = on_error
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        for skipped in range(len(self.records)):
            record = self.records[(index + skipped) % len(self.records)]
            try:
                video, label = self._load(record)
            except DecodeError as error:
                if self.on_error == "raise":
                    raise
                if record.path not in self._warned:
                    self._warned.add(record.path)
                    warnings.warn(f"skipping unreadable video: {error}", stacklevel=2)
                continue
            return {"video": video, "label": label, "index": index, "skipped": skipped}
        raise RuntimeError(f"none of the {len(self.records)} videos in this split can be decoded")

    def _load(self, record: VideoRecord) -> tuple[Tensor, int]:
        total = record.num_frames or self.decoder.num_frames(record)
        if total <= 0:
            raise DecodeError(record.path, "no decodable frames")
        indices = clip_indices(
            total,
            sampling=self.sampling,
            num_frames=self.num_frames,
            frame_interval=self.frame_interval,
            num_clips=self.test_clips,
            train=self.mode == "train",
        )  # [K, T]
        # one read for all clips: the decoder decodes each distinct frame once
        frames = self.decoder.read(record, indices.flatten())  # [K*T, H, W, 3]
        frames = rearrange(frames, "(k t) h w c -> k t h w c", k=indices.shape[0])
        if self.mode == "train":
            # the label can change: a flip swaps mirror classes (``flip_label_map``)
            return self.train_transform(frames[0], record.label)  # [C, T, H, W], label
        views = torch.cat([self.test_views(clip) for clip in frames])  # [K*crops, C, T, H, W]
        return (views[0] if self.mode == "val" else views), record.label
