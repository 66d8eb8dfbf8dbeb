"""Frame-folder backend: one image per frame (``00001.jpg``, ``00002.jpg``, …).

Something-Something v1 ships frames like this, and many users pre-extract them
(``python -m datamodules.prepare frames``). Reading a frame is one file read and one JPEG decode
(libjpeg-turbo through torchvision), with no inter-frame dependency, so a sparse sample costs
exactly its own frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file

from datamodules.decoders import DecodeError, Indices
from datamodules.decoders._common import (
    LRUCache,
    as_index_array,
    check_indices,
    quiet_image_codec_deprecation,
)
from datamodules.records import VideoRecord

__all__ = ["FrameFolderDecoder"]

quiet_image_codec_deprecation()


class FrameFolderDecoder:
    """Reads frames from a folder of images named by a template.

    Args:
        template: file name of frame ``k`` as ``template.format(start_index + k)``, e.g.
            ``"{:05d}.jpg"`` (default), ``"img_{:05d}.jpg"`` (TSN's extraction),
            ``"frame{:06d}.png"``. JPEG files are decoded with ``decode_jpeg``, anything else
            with ``decode_image``.
        start_index: number of the first frame, 0 or 1; ``None`` detects it per folder
            (0 when ``template.format(0)`` exists, else 1).
        cache_size: folders whose frame count is kept per process.

    The frame count is the run of consecutive files from the first one (a gap ends the video:
    later files would not be reachable by index anyway). ``start_sec``/``end_sec`` do not apply
    to frame folders and are ignored.
    """

    def __init__(
        self,
        template: str = "{:05d}.jpg",
        start_index: int | None = None,
        cache_size: int = 100_000,
    ) -> None:
        try:
            template.format(0)
        except (IndexError, KeyError, ValueError) as error:
            raise ValueError(f"template {template!r} must format one integer: {error}") from None
        if start_index not in (None, 0, 1):
            raise ValueError(f"start_index must be 0, 1 or None, got {start_index!r}")
        self.template = template
        self.start_index = start_index
        self._jpeg = template.lower().endswith((".jpg", ".jpeg"))
        self._counts: LRUCache[str, tuple[int, int]] = LRUCache(cache_size)

    def _scan(self, path: str) -> tuple[int, int]:
        """``(first number, frame count)`` of a folder."""
        cached = self._counts.get(path)
        if cached is not None:
            return cached
        if not os.path.isdir(path):
            reason = "is a file, not a frame folder" if os.path.exists(path) else "not found"
            raise DecodeError(path, reason)
        try:
            names = set(os.listdir(path))
        except OSError as error:
            raise DecodeError(path, f"cannot list: {error}") from None
        start = self.start_index
        if start is None:
            start = 0 if self.template.format(0) in names else 1
        count = 0
        while self.template.format(start + count) in names:
            count += 1
        if count == 0:
            raise DecodeError(path, f"no frames named like {self.template.format(start)!r}")
        self._counts.put(path, (start, count))
        return start, count

    def num_frames(self, record: VideoRecord) -> int:
        """Consecutive frame files in the folder."""
        return self._scan(record.path)[1]

    def frame_path(self, record: VideoRecord, index: int) -> Path:
        """File holding frame ``index`` (0-based) of ``record``."""
        start, _ = self._scan(record.path)
        return Path(record.path) / self.template.format(start + index)

    def read(self, record: VideoRecord, indices: Indices) -> Tensor:
        """Frames at ``indices``: ``uint8 [T, H, W, 3]`` (each distinct frame decoded once)."""
        path = record.path
        idx = as_index_array(indices)
        start, count = self._scan(path)
        check_indices(path, idx, count)
        if idx.size == 0:
            return torch.empty(0, 0, 0, 3, dtype=torch.uint8)
        unique = sorted(set(idx.tolist()))
        decoded: dict[int, Tensor] = {}
        for k in unique:
            decoded[k] = self._decode(Path(path) / self.template.format(start + k))
        shapes = {tuple(f.shape) for f in decoded.values()}
        if len(shapes) > 1:
            raise DecodeError(path, f"frames differ in size: {sorted(shapes)}")
        return torch.stack([decoded[k] for k in idx.tolist()])

    def _decode(self, file: Path) -> Tensor:
        """One image file → ``uint8 [H, W, 3]``."""
        try:
            # read straight into a tensor (no bytes → bytearray → tensor copies)
            data = read_file(str(file))
        except RuntimeError as error:
            if not file.exists():
                reason = "frame file missing"
            elif file.stat().st_size == 0:
                reason = "empty frame file"
            else:
                reason = f"cannot read frame ({error})"
            raise DecodeError(str(file), reason) from None
        try:
            if self._jpeg:
                image = decode_jpeg(data, mode=ImageReadMode.RGB)
            else:
                image = decode_image(data, mode=ImageReadMode.RGB)
        except RuntimeError as error:
            raise DecodeError(str(file), f"cannot decode frame: {error}") from None
        return image.permute(1, 2, 0)
