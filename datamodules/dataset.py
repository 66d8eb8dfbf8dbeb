"""The Dataset every datamodule uses: record → indices → decoded frames → clip or test views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor
from torch.utils.data import Dataset, default_collate, get_worker_info

from datamodules.decoders import DecodeError, Decoder
from datamodules.randomness import SampleKey
from datamodules.records import RecordTable, VideoRecord
from datamodules.reports import UnreadableLog
from datamodules.sampling import clip_indices
from datamodules.transforms import ClipTransform, ClipViews

Mode = Literal["train", "val", "test"]
OnError = Literal["warn", "raise"]
Sample = dict[str, Any]


def _sample(video: Tensor | None, label: int, index: int,
            failures: list[tuple[int, str, str]] | None = None) -> Sample:
    return {"video": video, "label": label, "index": index, "skipped": len(failures or ()),
            "unreadable": failures or []}


def _generator(key: int | SampleKey, position: int) -> torch.Generator | None:
    """The draws of the record at ``position`` for ``key`` (``None``: the global RNG)."""
    return key.generator(position) if isinstance(key, SampleKey) else None


def collate_samples(samples: list[Sample]) -> dict[str, Any]:
    """Batch ``VideoDataset`` samples, leaving out the unreadable ones.

    Returns ``video`` ``[B, ...]``, ``label`` / ``index`` / ``skipped`` ``[B]`` for the samples
    that decoded (``B`` may be 0 in evaluation: then ``video`` is an empty ``[0, 3, 0, 0, 0]``
    tensor, so device-side normalisation passes it through), and for
    the records that did not: ``unreadable_index`` ``[S]`` (dataset positions),
    ``unreadable_path`` and ``unreadable_reason`` (lists of ``S`` strings). ``num_replaced``
    (an ``int``, host-side): training samples whose own video was unreadable and that carry
    the next readable one instead — each unreadable record once, however many unreadable
    neighbours its replacement passed over (those count when their own sample comes).
    """
    failures = [failure for sample in samples for failure in sample["unreadable"]]
    readable = [{k: v for k, v in s.items() if k != "unreadable"}
                for s in samples if s["video"] is not None]
    if readable:
        batch = default_collate(readable)
    else:
        empty = torch.zeros(0, dtype=torch.long)
        batch = {"video": torch.zeros(0, 3, 0, 0, 0, dtype=torch.uint8), "label": empty,
                 "index": empty, "skipped": empty}
    batch["unreadable_index"] = torch.tensor([f[0] for f in failures], dtype=torch.long)
    batch["unreadable_path"] = [f[1] for f in failures]
    batch["unreadable_reason"] = [f[2] for f in failures]
    batch["num_replaced"] = sum(1 for s in readable if s["skipped"])
    return batch


class VideoDataset(Dataset):
    """Samples frame indices, decodes only those frames and applies the CPU transforms.

    A sample is a dict:

    - ``video``: ``uint8`` ``[C, T, H, W]`` in ``train``/``val`` mode (one clip; val takes the
      centre clip and centre crop), ``[V, C, T, H, W]`` in ``test`` mode with
      ``V = test_clips × views_per_clip`` (``test_views``: crops, or one full frame) ordered
      clip-major (view ``0`` is the centre crop of the first clip).
    - ``clip_view`` (``test`` mode): which of the ``V`` views is the clip-level prediction —
      the first (centre) view of the middle clip, ``(test_clips // 2) × views_per_clip``: a
      dense clip-level test takes the clip at the video's centre, not its start.
    - ``label``: class index; ``index``: position in ``records`` of the record the video
      and label come from (lets evaluation count every video once under DDP);
    - ``skipped``: how many unreadable records were passed over to produce this sample (summed
      and logged by the LightningModule); ``unreadable``: ``(index, path, reason)`` of each.

    A record that cannot be decoded is, by default (``on_error="warn"``), named once per run
    (``unreadable_log``) and

    - in training, replaced by the next readable record, which keeps its own label and index
      (so a corrupt file never stops a long run and no sample carries another's label);
    - in evaluation (``val``/``test``, and predict), never replaced: the sample is a marker
      (``video`` is ``None``) that ``collate_samples`` drops, so the video is left out of the
      metrics and the predictions and counted instead.

    ``on_error="raise"`` makes it fatal. Batch with ``collate_samples`` (the datamodules do).

    The key is a position in ``records`` or, from the datamodule's training sampler, a
    :class:`~datamodules.randomness.SampleKey` ``(index, epoch, seed)``: then every random draw
    of the sample (frame indices, crop, flip, …) comes from a generator derived from those
    three and the position of the record read, so the sample is the same in any worker, on any
    rank and after a resume. A bare position draws from the global RNG.
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
        train_transform: ClipTransform | None = None,
        test_views: ClipViews | None = None,
        on_error: OnError = "warn",
        unreadable_log: UnreadableLog | None = None,
    ) -> None:
        if mode == "train" and train_transform is None:
            raise ValueError("mode='train' needs a train_transform")
        if mode != "train" and test_views is None:
            raise ValueError(f"mode={mode!r} needs test_views")
        if on_error not in ("warn", "raise"):
            raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}")
        # numpy columns, not a list of objects: workers read them without copying them
        self.records = RecordTable.from_records(records)
        self.decoder = decoder
        self.mode = mode
        self.sampling = sampling
        self.num_frames = num_frames
        self.frame_interval = frame_interval
        self.test_clips = test_clips if mode == "test" else 1
        self.train_transform = train_transform
        self.test_views = test_views
        self.on_error = on_error
        self.unreadable_log = unreadable_log if unreadable_log is not None else UnreadableLog()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | SampleKey) -> Sample:
        index = key.index if isinstance(key, SampleKey) else int(key)
        record = self.records[index]
        try:
            video, label = self._load(record, _generator(key, index))
        except DecodeError as error:
            if self.on_error == "raise":
                raise
            failures = [self._failure(index, error)]
        else:
            sample = _sample(video, label, index)
            if self.mode == "test":
                sample["clip_view"] = (self.test_clips // 2) * self.test_views.views_per_clip
            return sample
        if self.mode != "train":
            # evaluation never substitutes: the collate function drops this marker and the
            # LightningModule counts it (``test/skipped_videos``)
            return _sample(None, record.label, index, failures=failures)
        # training: the next readable record stands in, with its own label and index
        for step in range(1, len(self.records)):
            other = (index + step) % len(self.records)
            try:
                video, label = self._load(self.records[other], _generator(key, other))
            except DecodeError as error:
                failures.append(self._failure(other, error))
                continue
            return _sample(video, label, other, failures=failures)
        raise RuntimeError(f"none of the {len(self.records)} videos in this split can be decoded")

    def _failure(self, index: int, error: DecodeError) -> tuple[int, str, str]:
        """``(index, path, message)``; named at once when loading in the main process, else by
        the main process when the batch arrives (``UnreadableLog.report_batch``)."""
        what = ("replaced by the next readable training video" if self.mode == "train"
                else f"excluded from {self.mode}")
        failure = (index, error.path, f"{error.reason}; {what}")
        if get_worker_info() is None:
            self.unreadable_log.report(failure[1], failure[2])
        return failure

    def _load(
        self, record: VideoRecord, generator: torch.Generator | None = None
    ) -> tuple[Tensor, int]:
        total = record.num_frames or self.decoder.num_frames(record)
        start = generator.get_state() if generator is not None else None
        try:
            return self._clip(record, total, generator)
        except DecodeError:
            # a read can find fewer frames than the packets promised (damaged packets): draw
            # the clip again from the count the decoder knows now
            if record.num_frames is not None or self.decoder.num_frames(record) == total:
                raise
            if generator is not None:
                # the same draws as a process whose decoder already knew the true count
                generator.set_state(start)
            return self._clip(record, self.decoder.num_frames(record), generator)

    def _clip(
        self, record: VideoRecord, total: int, generator: torch.Generator | None
    ) -> tuple[Tensor, int]:
        if total <= 0:
            raise DecodeError(record.path, "no decodable frames")
        indices = clip_indices(
            total,
            sampling=self.sampling,
            num_frames=self.num_frames,
            frame_interval=self.frame_interval,
            num_clips=self.test_clips,
            train=self.mode == "train",
            generator=generator,
        )  # [K, T]
        # one read for all clips: the decoder decodes each distinct frame once
        frames = self.decoder.read(record, indices.flatten())  # [K*T, H, W, 3]
        frames = rearrange(frames, "(k t) h w c -> k t h w c", k=indices.shape[0])
        if self.mode == "train":
            # the label can change: a flip swaps mirror classes (``flip_label_map``)
            # [C, T, H, W], label
            return self.train_transform(frames[0], record.label, generator=generator)
        views = self.test_views(frames)  # [K*views_per_clip, C, T, H, W], clip-major
        return (views[0] if self.mode == "val" else views), record.label
