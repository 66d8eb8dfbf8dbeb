"""The one record type every annotation parser produces and every decoder reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video: an encoded file or a folder of frames.

    Attributes:
        path: video file, or folder of extracted frames.
        label: class index (``-1`` for unlabelled test splits).
        num_frames: frame count when the annotation gives it (frame folders); ``None`` lets
            the decoder count.
        start_sec / end_sec: trim window inside the file (Kinetics clips cut from a longer video).
    """

    path: str
    label: int
    num_frames: int | None = None
    start_sec: float | None = None
    end_sec: float | None = None

    @property
    def video_id(self) -> str:
        """The file or folder name without its extension: a stable id for predictions."""
        return Path(self.path).stem
