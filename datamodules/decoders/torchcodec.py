"""torchcodec backend (optional): FFmpeg's C++ decode loop without per-frame Python overhead.

It needs ``pip install torchcodec`` and FFmpeg's shared libraries on the system (Debian:
``apt-get install ffmpeg``); without them ``get_decoder("torchcodec")`` raises ``ImportError``
with that instruction, and the default ``"pyav"`` backend is unaffected.

What a frame index means is decided in one place for every backend: the PyAV timeline
(``PyAVDecoder.timeline``, packets demuxed once per file and tail-checked). torchcodec then
fetches each wanted frame by its presentation time, and the timestamps it returns are checked
against the timeline; any disagreement, error, a file whose timeline had to come from a full
decode (damaged files, wrong timestamps) or a pixel format deeper than 8 bits is read with PyAV
instead, so both backends return the same pixels.
"""

from __future__ import annotations

import functools
from typing import Any

import av
import numpy as np
import torch
from torch import Tensor

from datamodules.decoders import DecodeError, Indices
from datamodules.decoders._common import as_index_array, check_indices
from datamodules.decoders.pyav import PyAVDecoder, Timeline
from datamodules.records import VideoRecord

__all__ = ["TorchCodecDecoder", "torchcodec_available"]

INSTALL_HINT = (
    "the torchcodec backend needs `pip install torchcodec` and FFmpeg's shared libraries "
    "(e.g. `apt-get install ffmpeg`); video_backend='pyav' works without them"
)


@functools.lru_cache(maxsize=1)
def torchcodec_available() -> bool:
    """Whether torchcodec imports and finds FFmpeg (loading its libraries can fail with
    OSError/RuntimeError even when the Python package is installed)."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # noqa: BLE001 (any failure to load means "not available")
        return False
    return True


@functools.lru_cache(maxsize=64)
def _same_rgb(pix_fmt: str) -> bool:
    """Whether torchcodec's RGB conversion gives swscale's pixels for this format: 8-bit YUV
    and RGB formats. Deeper formats (``yuv420p10le``) differ by a level or so (its own
    conversion path), so those reads go to PyAV."""
    try:
        components = av.VideoFormat(pix_fmt).components
    except (ValueError, av.FFmpegError):
        return False
    return bool(components) and all(c.bits == 8 for c in components)


class TorchCodecDecoder:
    """Reads frames with ``torchcodec.decoders.VideoDecoder``.

    Args:
        num_threads: FFmpeg decoding threads per call (1 suits one-per-core DataLoader workers).
        seek_mode: torchcodec's ``"approximate"`` (default: no scan of the whole file at open,
            frames are addressed by the exact times of the PyAV timeline) or ``"exact"``.
        **pyav_options: options of the ``PyAVDecoder`` that owns the timeline and the fallback.
    """

    def __init__(
        self, *, num_threads: int = 1, seek_mode: str = "approximate", **pyav_options: Any
    ) -> None:
        if not torchcodec_available():
            raise ImportError(INSTALL_HINT)
        self.num_threads = num_threads
        self.seek_mode = seek_mode
        self.pyav = PyAVDecoder(**pyav_options)
        self.fallbacks = 0  # reads served by PyAV instead (for diagnostics)

    def num_frames(self, record: VideoRecord) -> int:
        """Frames that decode in ``[start_sec, end_sec)`` (same count as the PyAV backend)."""
        return self.pyav.num_frames(record)

    def read(self, record: VideoRecord, indices: Indices) -> Tensor:
        """Frames at ``indices``: ``uint8 [T, H, W, 3]``, in the order of ``indices``."""
        idx = as_index_array(indices)
        timeline, lo, hi = self.pyav.window(record)
        check_indices(record.path, idx, hi - lo)
        if (idx.size == 0 or timeline.pts is None or timeline.source != "demux"
                or not _same_rgb(timeline.pix_fmt)):
            return self.pyav.read(record, idx)
        wanted, inverse = np.unique(idx + lo, return_inverse=True)
        frames = self._fetch(record.path, timeline, wanted)
        if frames is None:
            self.fallbacks += 1
            return self.pyav.read(record, idx)
        return frames[torch.from_numpy(inverse.reshape(-1))]

    def _fetch(self, path: str, timeline: Timeline, wanted: np.ndarray) -> Tensor | None:
        """``uint8 [len(wanted), H, W, 3]`` or ``None`` when torchcodec disagrees/fails."""
        from torchcodec.decoders import VideoDecoder

        pts = timeline.pts
        assert pts is not None
        tb = float(timeline.time_base)
        # ask for a point just after each frame's start, never the exact start (float rounding
        # of pts * time_base could select the previous frame) nor the middle of its interval
        # (torchcodec bounds frames by their packet duration, which VFR streams leave gaps in)
        gaps = np.diff(pts)
        min_gap = float(gaps.min()) * tb if len(gaps) else 1e-3
        nudge = min(1e-5, 0.25 * min_gap)
        seconds = (pts[wanted] * tb + nudge).tolist()
        try:
            decoder = VideoDecoder(
                path,
                dimension_order="NHWC",
                num_ffmpeg_threads=self.num_threads,
                seek_mode=self.seek_mode,
            )
            batch = decoder.get_frames_played_at(seconds=seconds)
        except (RuntimeError, ValueError, IndexError, OSError):
            return None
        got = batch.pts_seconds.numpy()
        expected = pts[wanted] * tb
        tolerance = 0.25 * min_gap
        if got.shape != expected.shape or np.any(np.abs(got - expected) > tolerance):
            return None
        data = batch.data
        if data.dtype != torch.uint8 or data.shape[-1] != 3:
            raise DecodeError(path, f"torchcodec returned {data.dtype} {tuple(data.shape)}")
        return data
