"""The one record type every annotation parser produces and every decoder reads, and the compact
table datasets keep them in."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

__all__ = ["RecordTable", "VideoRecord"]


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


class RecordTable(Sequence[VideoRecord]):
    """``VideoRecord``\\ s stored as numpy columns: a sequence that makes each record on access.

    A list of 260K record objects is 260K Python objects whose reference counts every
    DataLoader worker writes as it reads them, so each worker's copy-on-write pages fill up
    with copies of the list (PyTorch's "copy-on-read" problem, pytorch/pytorch#13246). Here the
    paths are one UTF-8 byte buffer with offsets and the other fields are typed arrays: a
    handful of objects whose pages a worker only reads.

    Missing values: ``num_frames`` ``-1``, ``start_sec`` / ``end_sec`` NaN.
    """

    def __init__(self, paths: np.ndarray, offsets: np.ndarray, labels: np.ndarray,
                 num_frames: np.ndarray, start_sec: np.ndarray, end_sec: np.ndarray) -> None:
        self._paths, self._offsets = paths, offsets
        self.labels, self._num_frames = labels, num_frames
        self._start, self._end = start_sec, end_sec

    @classmethod
    def from_records(cls, records: Iterable[VideoRecord]) -> RecordTable:
        if isinstance(records, RecordTable):
            return records
        records = list(records)
        nan = float("nan")
        return cls.from_columns(
            [r.path for r in records], [r.label for r in records],
            num_frames=[-1 if r.num_frames is None else r.num_frames for r in records],
            start_sec=[nan if r.start_sec is None else r.start_sec for r in records],
            end_sec=[nan if r.end_sec is None else r.end_sec for r in records])

    @classmethod
    def from_columns(cls, paths: Sequence[str], labels: Sequence[int] | np.ndarray, *,
                     num_frames: Sequence[int] | np.ndarray | None = None,
                     start_sec: Sequence[float] | np.ndarray | None = None,
                     end_sec: Sequence[float] | np.ndarray | None = None) -> RecordTable:
        """From one column per field, ``N`` long (no record objects on the way: 100Ks of
        annotations go straight in). Missing values as stored (``-1``, NaN); a column left out
        is all missing."""
        encoded = [path.encode("utf-8", "surrogateescape") for path in paths]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])

        def column(values: Sequence | np.ndarray | None, dtype: type, missing: float
                   ) -> np.ndarray:
            if values is None:
                return np.full(len(encoded), missing, dtype=dtype)
            array = np.asarray(values, dtype=dtype)
            if array.shape != (len(encoded),):
                raise ValueError(f"a column of {array.shape} for {len(encoded)} paths")
            return array

        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets,
                   column(labels, np.int64, -1), column(num_frames, np.int64, -1),
                   column(start_sec, np.float64, np.nan), column(end_sec, np.float64, np.nan))

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, index: int) -> str:
        start, end = self._offsets[index], self._offsets[index + 1]
        return self._paths[start:end].tobytes().decode("utf-8", "surrogateescape")

    def _record(self, index: int) -> VideoRecord:
        frames = int(self._num_frames[index])
        start, end = float(self._start[index]), float(self._end[index])
        return VideoRecord(self.path(index), int(self.labels[index]),
                           None if frames < 0 else frames,
                           None if math.isnan(start) else start,
                           None if math.isnan(end) else end)

    @overload
    def __getitem__(self, index: int) -> VideoRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[VideoRecord]: ...

    def __getitem__(self, index: int | slice) -> VideoRecord | list[VideoRecord]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} out of range ({len(self)} records)")
        return self._record(index)

    def __iter__(self) -> Iterator[VideoRecord]:
        return (self._record(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # a mutable-looking sequence compares by value

    def __repr__(self) -> str:
        return f"RecordTable({len(self)} records)"
