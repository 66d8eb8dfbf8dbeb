"""Flow-folder backend: stacks of pre-computed optical flow (``prepare flow``, MMAction2 layout).

A folder holds ``flow_x_00001.jpg`` / ``flow_y_00001.jpg`` … (greyscale JPEGs, 128 = no motion;
``datamodules.flow``). For this backend "frame" ``i`` of a video is the *stack* of
``flow_length`` consecutive flow pairs starting at pair ``i``, with the components interleaved
along the channel dim — ``x_i, y_i, x_{i+1}, y_{i+1}, …`` (TSN's input: 5 pairs → 10
channels). A folder of ``P`` flow pairs therefore has ``P − flow_length + 1`` frames, so every
sampler works unchanged: uniform sampling picks one stack per segment (TSN), dense sampling with
``flow_length=1`` gives 2-channel clips (I3D / S3D flow).
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg

from datamodules.decoders import DecodeError, Indices
from datamodules.decoders._common import as_index_array, check_indices
from datamodules.decoders.frames import FrameFolderDecoder
from datamodules.records import VideoRecord

__all__ = ["FlowFolderDecoder"]


class _GreyFrames(FrameFolderDecoder):
    """One flow component: a frame folder of greyscale JPEGs, read as ``[H, W, 1]``."""

    def _decode(self, file: Path) -> Tensor:
        from torchvision.io import read_file

        try:
            data = read_file(str(file))
            return decode_jpeg(data, mode=ImageReadMode.GRAY).permute(1, 2, 0)
        except RuntimeError as error:
            reason = "flow image missing" if not file.exists() else f"cannot read: {error}"
            raise DecodeError(str(file), reason) from None


class FlowFolderDecoder:
    """Reads flow stacks ``uint8 [T, H, W, 2 · flow_length]`` from flow folders.

    Args:
        flow_length: consecutive flow pairs per frame (stack).
        template_x / template_y: file names of pair ``k`` (``template.format(start_index + k)``).
        start_index: number of the first pair, 0 or 1; ``None`` detects it per folder.
    """

    def __init__(
        self,
        flow_length: int = 1,
        template_x: str = "flow_x_{:05d}.jpg",
        template_y: str = "flow_y_{:05d}.jpg",
        start_index: int | None = None,
    ) -> None:
        if flow_length < 1:
            raise ValueError(f"flow_length must be >= 1, got {flow_length}")
        self.flow_length = flow_length
        self.x = _GreyFrames(template_x, start_index)
        self.y = _GreyFrames(template_y, start_index)

    def num_pairs(self, record: VideoRecord) -> int:
        """Flow pairs with both components in the folder."""
        return min(self.x.num_frames(record), self.y.num_frames(record))

    def num_frames(self, record: VideoRecord) -> int:
        """Stacks of ``flow_length`` pairs that fit: ``pairs − flow_length + 1``."""
        pairs = self.num_pairs(record)
        if pairs < self.flow_length:
            raise DecodeError(record.path, f"{pairs} flow pairs, fewer than flow_length="
                                           f"{self.flow_length}")
        return pairs - self.flow_length + 1

    def read(self, record: VideoRecord, indices: Indices) -> Tensor:
        """Stacks starting at ``indices``: ``uint8 [T, H, W, 2 · flow_length]``, channels
        ``x_i, y_i, x_{i+1}, y_{i+1}, …`` (each pair decoded once)."""
        idx = as_index_array(indices)
        check_indices(record.path, idx, self.num_frames(record))
        if idx.size == 0:
            return torch.empty(0, 0, 0, 2 * self.flow_length, dtype=torch.uint8)
        pairs = (torch.from_numpy(idx)[:, None] + torch.arange(self.flow_length)).flatten()
        x, y = self.x.read(record, pairs), self.y.read(record, pairs)  # [T·L, H, W, 1] each
        if x.shape != y.shape:
            raise DecodeError(record.path, f"flow_x and flow_y differ in size: "
                                           f"{tuple(x.shape)} vs {tuple(y.shape)}")
        stacked = torch.cat([x, y], dim=-1)  # [T·L, H, W, 2]
        return rearrange(stacked, "(t l) h w c -> t h w (l c)", l=self.flow_length)
