"""PyAV backend: decode only the frames the sampled indices need.

How a read works:

1. A *timeline* of the file (cached per path): the presentation timestamps of every frame, in
   presentation order, and which of them are key frames. It comes from demuxing the packets
   (no decoding, ~1 ms for a 10 s clip), not from the header's frame count, because headers lie
   (off by one, by hundreds, or absent as in WebM). When the header's count is missing or
   disagrees with the packets, the last GOP is decoded once to check that every frame the
   timeline promises really comes out; when it does not (a stream cut short, damaged packets)
   the timeline is rebuilt from a full decode pass. A packet flagged corrupt (a file cut inside
   a packet) goes straight to the decode pass.

   Timestamps that do not describe presentation order are common in real files: MP4 / MKV /
   MPEG-TS with B-frames written without composition offsets (packet pts equal to dts), H.264
   with B-frames in AVI (which stores no presentation times; the demuxer numbers packets in
   decode order). The decoder then outputs frames in presentation order carrying pts that are
   *not* increasing, and matching frames by pts picks the wrong ones. Two cheap checks catch
   them: at the scan, a codec that reorders frames (``has_b_frames``) whose packet pts never go
   back in decode order; at every read, decoder output pts that fail to increase. Either way the
   timeline is rebuilt from a full decode pass in *decode-output order* (``reordered``): frame
   ``k`` is the ``k``-th output, found again after a seek by the (wrong but unique) pts it
   carries; missing or repeated pts leave only front-to-back reads.
2. The wanted frames are grouped into runs that share a key frame; for each run the container
   seeks to the key frame and decodes forward, letting FFmpeg drop the unwanted frames that no
   other frame references (``skip_frame="NONREF"``: about half the B-frames of an x264 stream),
   converts to RGB only the wanted frames, with one reused swscale context (converting every
   frame would cost about as much as decoding it; a fresh context per frame, as
   ``VideoFrame.to_ndarray`` makes, costs more than the conversion), and stops after the run's
   last frame.
3. If a frame the timeline promised does not come out, the read retries from the start of the
   file, then with a timeline rebuilt from a full decode, and only then raises ``DecodeError``.

Frame ``i`` therefore is the ``i``-th frame of a plain sequential
``container.decode(video=0)`` (within ``start_sec``/``end_sec``), with the same pixels as
``frame.to_ndarray(format="rgb24")``.

Worker safety: a container is opened and closed inside every call; the state kept between
calls is the timeline cache (plain numpy data, which forks and pickles cleanly) and a swscale
context that is rebuilt in each process (dropped when pickled, replaced after a fork; the
inherited one is kept, never freed, because freeing it in the child hangs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from torch import Tensor
from torch.utils.data import get_worker_info

from datamodules.decoders import DecodeError, Indices
from datamodules.decoders._common import (
    LRUCache,
    as_index_array,
    check_indices,
    file_key,
    trim_window,
)
from datamodules.records import VideoRecord

__all__ = ["PyAVDecoder", "ReadStats", "Timeline", "sequential_frames"]

Verify = Literal["auto", "tail", "full", "none"]


@dataclass(frozen=True)
class Timeline:
    """Where every decodable frame of one video stream sits.

    Attributes:
        pts: int64 ``[N]`` the timestamp each frame carries out of the decoder, frames in
            presentation order, unique; sorted unless ``reordered``. ``None`` when the stream's
            timestamps are missing or repeat (then reads decode front to back).
        keyframes: int64 ``[K]`` positions (into ``pts``) of key frames, sorted.
        times: float64 ``[N]`` seconds from the first frame (for ``start_sec``/``end_sec``).
        width / height: frame size.
        time_base: seconds per ``pts`` unit of the stream.
        header_frames: the count the container header claims (0 when it has none).
        source: ``"demux"`` (from packets, tail-checked) or ``"decode"`` (from a full decode).
        reordered: the frames' pts do not increase with their position (a file whose
            timestamps are wrong): positions are decode-output order, ``pts`` only tell frames
            apart.
        pix_fmt: the stream's pixel format (``"yuv420p"``, ``"yuv420p10le"``, …).
        reorders: the codec may output frames in another order than it receives them
            (B-frames: ``has_b_frames``).
        damage: what the decode pass met (rejected packets, frames decoded with errors). The
            pixels of such frames, and of frames that reference them, are whatever the
            decoder's error concealment leaves (they differ even between two plain decodes in
            one process); their count and positions are those of a sequential decode.
    """

    pts: np.ndarray | None
    keyframes: np.ndarray
    times: np.ndarray
    width: int
    height: int
    time_base: Fraction
    header_frames: int
    source: str
    reordered: bool = False
    damage: tuple[str, ...] = ()
    pix_fmt: str = ""
    reorders: bool = False

    def __post_init__(self) -> None:
        # sorted pts and where each sits in ``pts``: one lookup path for both orders
        order = None
        if self.pts is not None and self.reordered:
            order = np.argsort(self.pts, kind="stable")
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_sorted", self.pts if order is None else self.pts[order])

    def __len__(self) -> int:
        return len(self.times)

    def position(self, pts: int | None) -> int:
        """Position of the frame with this timestamp, or -1 when it is not in the timeline."""
        if pts is None or self.pts is None:
            return -1
        pos = int(np.searchsorted(self._sorted, pts))
        if pos >= len(self._sorted) or self._sorted[pos] != pts:
            return -1
        return pos if self._order is None else int(self._order[pos])


@dataclass
class ReadStats:
    """What the last ``read`` cost: frames decoded, frames converted to RGB, seeks."""

    decoded: int = 0
    converted: int = 0
    seeks: int = 0


class _Untrusted(Exception):
    """A read met what the demuxed timeline did not foresee (output pts that fail to increase,
    a packet the decoder rejects): only a full decode pass can say what the frames are."""


def _open(path: str) -> av.container.InputContainer:
    if os.path.isdir(path):
        raise DecodeError(path, "is a folder, not a video file (use video_backend='frames')")
    if os.path.getsize(path) == 0:
        raise DecodeError(path, "empty file")
    try:
        container = av.open(path, mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        raise DecodeError(path, f"cannot open as a video ({error})") from None
    if not container.streams.video:
        container.close()
        raise DecodeError(path, "no video stream")
    return container


def _safe_frames(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    keep: set[int] | None = None,
    damage: list[str] | None = None,
) -> Iterator[av.VideoFrame]:
    """Decoded frames in presentation order, skipping packets the decoder rejects.

    A damaged packet costs its own frame(s), not the rest of the file; a demuxer error (a file
    cut short) ends the stream after flushing what the decoder still holds. ``damage``, when
    given, collects what went wrong (rejected packets, frames the decoder flags corrupt).

    ``keep``: when given, the timestamps of the frames the caller wants; every other packet is
    sent with ``skip_frame="NONREF"``, so the decoder drops it *if no other frame references
    it* (the B-frames between the key frame and a target: about half the frames of a default
    x264 stream). Frames that are referenced decode as usual, so the kept frames' pixels are
    unchanged — FFmpeg's own contract for ``AVDISCARD_NONREF``.
    """
    ctx = stream.codec_context
    packets = container.demux(stream)
    skipping = False
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except (av.FFmpegError, OSError):
            delayed: list[av.VideoFrame] = []
            with contextlib.suppress(av.FFmpegError, OSError):
                delayed = stream.codec_context.decode(None)  # flush what the decoder holds
            yield from delayed
            return
        if keep is not None:
            skip = packet.pts is not None and packet.pts not in keep
            if skip != skipping:  # set only on change: the setter is not free
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
        try:
            frames = packet.decode()
        except (av.FFmpegError, OSError) as error:
            if damage is not None:
                damage.append(f"packet at pts {packet.pts} rejected ({error.strerror or error})")
            continue
        if damage is not None:
            damage.extend(f"frame at pts {f.pts} decoded with errors" for f in frames
                          if f.is_corrupt)
        yield from frames


def sequential_frames(path: str, damage: list[str] | None = None) -> Iterator[av.VideoFrame]:
    """Every frame of a plain front-to-back decode, PyAV's default threading, packets the
    decoder rejects skipped: what "frame ``i``" means for every backend, for ``prepare frames``
    and for ``datamodules.check``. ``damage`` collects what went wrong (see ``_safe_frames``)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        yield from _safe_frames(container, stream, damage=damage)


#: swscale contexts a forked process inherited; kept alive, see ``PyAVDecoder._to_rgb``
_FORKED_REFORMATTERS: list[VideoReformatter] = []


class PyAVDecoder:
    """Seek-and-decode reader over PyAV (see module docstring).

    Args:
        thread_type: FFmpeg threading (``"AUTO"`` = frame + slice threads; ``"NONE"`` off).
        thread_count: decoder threads; 0 lets FFmpeg pick from the core count; ``None``
            (default) means 1 inside a DataLoader worker (the workers already fill the cores,
            and per-worker thread pools only oversubscribe them) and 0 elsewhere.
        verify: how the frame count is checked, once per file: ``"auto"`` (default) decodes
            the last GOP when the header's frame count is missing (WebM) or disagrees with the
            demuxed packets, ``"tail"`` always does, ``"full"`` builds the timeline from a full
            decode, ``"none"`` trusts the packets. Whatever the choice, a frame that fails to
            come out at read time triggers a full-decode rebuild before any error.
        seek_gap: keep decoding forward instead of seeking when fewer than this many frames
            would be skipped (a seek flushes the decoder, which costs a few frames).
        skip_nonref: let the decoder drop unwanted frames that nothing references (see
            ``_safe_frames``); the kept frames are bit-identical either way.
        cache_size: timelines kept per process.
        index: a JSON file of timelines written by ``python -m datamodules.check
            --save-index``; files it holds (unchanged since) are never scanned.
    """

    def __init__(
        self,
        *,
        thread_type: str = "AUTO",
        thread_count: int | None = None,
        verify: Verify = "auto",
        seek_gap: int = 4,
        skip_nonref: bool = True,
        cache_size: int = 20_000,
        index: str | None = None,
    ) -> None:
        if verify not in ("auto", "tail", "full", "none"):
            raise ValueError(f"verify must be 'auto', 'tail', 'full' or 'none', got {verify!r}")
        self.thread_type = thread_type
        self.thread_count = thread_count
        self.verify = verify
        self.seek_gap = seek_gap
        self.skip_nonref = skip_nonref
        self._timelines: LRUCache[tuple, Timeline] = LRUCache(cache_size)
        self.index = index
        self._saved: dict[tuple[str, int, int], Timeline] = {}
        if index is not None:
            from datamodules.decoders.index_file import load_index

            self._saved = load_index(index)
        self.last_stats = ReadStats()
        self._rgb: tuple[int, VideoReformatter] | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_rgb"] = None  # a C object: rebuilt on first use in the new process
        return state

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """``frame.to_ndarray(format="rgb24")`` with one reusable swscale context.

        ``VideoFrame.to_ndarray`` builds a new swscale context for every frame, which costs more
        than the conversion itself (~1.5 ms at 340×256, ~5× the pixel work); a shared
        ``VideoReformatter`` keeps it, with identical output. Kept per process (after a fork
        the child makes its own).
        """
        if self._rgb is None or self._rgb[0] != os.getpid():
            if self._rgb is not None:
                # inherited through a fork (DataLoader workers): never freed here. Its
                # swscale context owns slice threads that stayed in the parent, and freeing it
                # (sws_freeContext → avpriv_slicethread_free) waits forever on their condition
                # variable: the workers of a process that had decoded hung on their first clip
                _FORKED_REFORMATTERS.append(self._rgb[1])
            self._rgb = (os.getpid(), VideoReformatter())
        return self._rgb[1].reformat(frame, format="rgb24").to_ndarray()

    # --- public API ----------------------------------------------------------------------

    def num_frames(self, record: VideoRecord) -> int:
        """Frames that decode inside ``[start_sec, end_sec)``; raises ``DecodeError`` if 0."""
        timeline = self.timeline(record.path)
        lo, hi = trim_window(timeline.times, record.start_sec, record.end_sec)
        if hi <= lo:
            raise DecodeError(
                record.path,
                f"no frames between start_sec={record.start_sec} and end_sec={record.end_sec}",
            )
        return hi - lo

    def read(self, record: VideoRecord, indices: Indices) -> Tensor:
        """Frames at ``indices`` (relative to ``start_sec``), ``uint8 [T, H, W, 3]``."""
        path = record.path
        idx = as_index_array(indices)
        timeline = self.timeline(path)
        lo, hi = trim_window(timeline.times, record.start_sec, record.end_sec)
        check_indices(path, idx, hi - lo)
        if idx.size == 0:
            return torch.empty(0, timeline.height, timeline.width, 3, dtype=torch.uint8)
        wanted = np.unique(idx + lo)
        self.last_stats = ReadStats()
        try:
            frames = self._read_positions(path, timeline, wanted)
        except _Untrusted:
            frames = {}  # rebuilt below, in decode-output order
        if len(frames) < len(wanted) and timeline.source != "decode":
            # the packets promised frames that do not decode: trust only a full decode now
            timeline = self._rebuild(path)
            lo, hi = trim_window(timeline.times, record.start_sec, record.end_sec)
            check_indices(path, idx, hi - lo)
            wanted = np.unique(idx + lo)
            frames = self._read_positions(path, timeline, wanted)
        missing = [int(p) - lo for p in wanted if int(p) not in frames]
        if missing:
            raise DecodeError(path, f"frames {missing[:8]} do not decode")
        shapes = {frames[int(p)].shape for p in wanted}
        if len(shapes) > 1:  # a resolution change mid-stream: no single [T, H, W, 3] tensor
            raise DecodeError(path, f"frame size changes inside the video: {sorted(shapes)}")
        return torch.from_numpy(np.stack([frames[int(p)] for p in idx + lo]))

    def window(self, record: VideoRecord) -> tuple[Timeline, int, int]:
        """``(timeline, lo, hi)``: the record's frames are timeline positions ``[lo, hi)``."""
        timeline = self.timeline(record.path)
        lo, hi = trim_window(timeline.times, record.start_sec, record.end_sec)
        return timeline, lo, hi

    def timeline(self, path: str) -> Timeline:
        """The cached timeline of ``path`` (built on first use in this process)."""
        key = file_key(path)
        timeline = self._timelines.get(key)
        if timeline is None:
            timeline = self._saved.get((os.path.abspath(path), *key[1:])) or self._scan(path)
            self._timelines.put(key, timeline)
        return timeline

    # --- timeline ------------------------------------------------------------------------

    def _configure(self, stream: av.VideoStream, damaged: bool = False) -> None:
        # Frame threading drops a different set of frames than a plain decode around a damaged
        # packet, so a file that needed the decode pass is read with PyAV's default (slice
        # threads), which is what "a plain sequential decode" means.
        stream.thread_type = "SLICE" if damaged else self.thread_type
        count = self.thread_count
        if count is None:
            count = 1 if get_worker_info() is not None else 0
        stream.codec_context.thread_count = count

    def _rebuild(self, path: str) -> Timeline:
        timeline = self._decode_timeline(path)
        self._timelines.put(file_key(path), timeline)
        return timeline

    def _scan(self, path: str) -> Timeline:
        if self.verify == "full":
            return self._decode_timeline(path)
        timeline = self._demux_timeline(path)
        if timeline is None:
            return self._decode_timeline(path)
        check = self.verify == "tail" or (
            self.verify == "auto" and timeline.header_frames != len(timeline)
        )
        if check and not self._tail_decodes(path, timeline):
            return self._decode_timeline(path)
        if timeline.reorders and self.verify != "none" and not self._head_decodes(
                path, timeline):
            return self._decode_timeline(path)
        return timeline

    def _head_decodes(self, path: str, timeline: Timeline, count: int = 12) -> bool:
        """Do the first ``count`` frames a plain decode outputs sit at positions 0, 1, 2, …?

        Only for codecs that reorder frames, where packet timestamps can be guesses that the
        decoder's output contradicts (MPEG-4 Part 2 "packed B-frames" in AVI, as DivX / Xvid
        wrote them: the demuxer's pts are in order, the frames are not). About ``count`` frames
        of decoding, once per file.
        """
        try:
            with _open(path) as container:
                stream = container.streams.video[0]
                self._configure(stream)
                for k, frame in enumerate(_safe_frames(container, stream)):
                    if timeline.position(frame.pts) != k:
                        return False
                    if k + 1 >= min(count, len(timeline)):
                        return True
        except (av.FFmpegError, OSError):
            return False
        return False

    def _demux_timeline(self, path: str) -> Timeline | None:
        """Timeline from packet timestamps; ``None`` when they cannot be trusted."""
        stamps: list[int] = []
        keys: list[bool] = []
        with _open(path) as container:
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            time_base = stream.time_base
            header_frames = stream.frames or 0
            pix_fmt = stream.codec_context.pix_fmt or ""
            reorders = bool(stream.codec_context.has_b_frames)
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:  # the end-of-stream flush packet
                        continue
                    if packet.is_discard:  # dropped by the decoder (edit lists)
                        continue
                    if packet.is_corrupt:  # may or may not decode: let a decode pass say
                        return None
                    ts = packet.pts if packet.pts is not None else packet.dts
                    if ts is None:
                        return None
                    stamps.append(ts)
                    keys.append(packet.is_keyframe)
            except (av.FFmpegError, OSError):
                return None  # cut short or damaged: only a decode pass can say what is left
        if not stamps or time_base is None:
            return None
        pts = np.asarray(stamps, dtype=np.int64)
        if reorders and len(pts) > 2 and np.all(np.diff(pts) > 0):
            # the codec reorders frames, yet the packets' pts follow decode order: they are
            # decode timestamps (B-frames muxed without composition offsets, or into AVI)
            return None
        order = np.argsort(pts, kind="stable")
        pts = pts[order]
        if np.any(np.diff(pts) == 0):
            return None
        keyframes = np.flatnonzero(np.asarray(keys, dtype=bool)[order])
        return Timeline(
            pts=pts,
            keyframes=keyframes.astype(np.int64),
            times=_seconds(pts, time_base),
            width=width,
            height=height,
            time_base=Fraction(time_base),
            header_frames=header_frames,
            source="demux",
            pix_fmt=pix_fmt,
            reorders=reorders,
        )

    def _tail_decodes(self, path: str, timeline: Timeline) -> bool:
        """Decode from the last key frame to the end: do exactly the promised frames appear?"""
        n = len(timeline)
        first = int(timeline.keyframes[-1]) if len(timeline.keyframes) else 0
        seen: set[int] = set()
        try:
            with _open(path) as container:
                stream = container.streams.video[0]
                self._configure(stream)
                if first > 0:
                    container.seek(int(timeline.pts[first]), stream=stream, backward=True)
                previous = -1
                damage: list[str] = []
                for frame in _safe_frames(container, stream, damage=damage):
                    pos = timeline.position(frame.pts)
                    if pos <= previous or damage:  # unknown, out of order, or damaged
                        return False
                    previous = pos
                    seen.add(pos)
        except (av.FFmpegError, OSError):
            return False
        return seen.issuperset(range(first, n)) and max(seen, default=-1) == n - 1

    def _decode_timeline(self, path: str) -> Timeline:
        """Timeline from a full decode (no RGB conversion): the ground truth, slowest path."""
        stamps: list[int | None] = []
        keys: list[bool] = []
        with _open(path) as container:
            stream = container.streams.video[0]
            self._configure(stream, damaged=True)
            time_base = stream.time_base
            header_frames = stream.frames or 0
            width, height = stream.codec_context.width, stream.codec_context.height
            pix_fmt = stream.codec_context.pix_fmt or ""
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            damage: list[str] = []
            for frame in _safe_frames(container, stream, damage=damage):
                stamps.append(frame.pts)
                keys.append(bool(frame.key_frame))
                width, height = frame.width, frame.height
        if not stamps:
            raise DecodeError(path, "no decodable video frames")
        usable = time_base is not None and all(s is not None for s in stamps)
        pts = np.asarray(stamps, dtype=np.int64) if usable else None
        reordered = False
        if pts is not None and np.any(np.diff(pts) <= 0):
            if len(np.unique(pts)) < len(pts):
                pts = None  # repeated timestamps: frames only by decode order, front to back
            else:
                reordered = True  # wrong but unique: they still tell frames apart
        if pts is not None:
            # the k-th smallest timestamp is the best estimate of the k-th frame's time
            times = _seconds(np.sort(pts), time_base)
        else:
            times = np.arange(len(stamps), dtype=np.float64) / float(rate)
        return Timeline(
            pts=pts,
            keyframes=np.flatnonzero(np.asarray(keys, dtype=bool)).astype(np.int64),
            times=times,
            width=width,
            height=height,
            time_base=Fraction(time_base) if time_base is not None else Fraction(1, 1),
            header_frames=header_frames,
            source="decode",
            reordered=reordered,
            damage=tuple(damage),
            pix_fmt=pix_fmt,
        )

    # --- reading -------------------------------------------------------------------------

    def _plan(self, timeline: Timeline, wanted: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Group sorted positions into runs ``(key frame position or -1, positions)``; a new run
        starts where seeking to a later key frame skips at least ``seek_gap`` frames."""
        keyframes = timeline.keyframes
        slot = np.searchsorted(keyframes, wanted, side="right") - 1
        kf_of = np.where(slot >= 0, keyframes[np.maximum(slot, 0)], -1)
        runs: list[tuple[int, list[int]]] = []
        for pos, kf in zip(wanted.tolist(), kf_of.tolist(), strict=True):
            if runs and kf - runs[-1][1][-1] - 1 < self.seek_gap:
                runs[-1][1].append(pos)
            else:
                runs.append((kf, [pos]))
        return [(kf, np.asarray(p, dtype=np.int64)) for kf, p in runs]

    def decode_only(self, record: VideoRecord, indices: Indices) -> ReadStats:
        """Run ``read``'s decode plan without converting to RGB (the floor ``read`` is measured
        against in ``benchmarks/data_loading.py``); returns what it cost."""
        idx = as_index_array(indices)
        timeline, lo, hi = self.window(record)
        check_indices(record.path, idx, hi - lo)
        self.last_stats = ReadStats()
        self._read_positions(record.path, timeline, np.unique(idx + lo), convert=False)
        return self.last_stats

    def _read_positions(
        self, path: str, timeline: Timeline, wanted: np.ndarray, convert: bool = True
    ) -> dict[int, np.ndarray]:
        """``{position: uint8 [H, W, 3]}`` for the positions that decode."""
        if timeline.pts is None:
            return self._read_sequential(path, timeline, wanted)
        out: dict[int, np.ndarray] = {}
        first_key = int(timeline.keyframes[0]) if len(timeline.keyframes) else -1
        try:
            with _open(path) as container:
                stream = container.streams.video[0]
                self._configure(stream, damaged=timeline.source == "decode")
                for run_index, (kf, positions) in enumerate(self._plan(timeline, wanted)):
                    # a fresh container already sits at the start: no seek for the first GOP
                    if not (run_index == 0 and kf <= first_key):
                        container.seek(int(timeline.pts[kf]), stream=stream, backward=True)
                        self.last_stats.seeks += 1
                    self._decode_run(container, stream, timeline, positions, out, convert)
        except (av.FFmpegError, OSError):
            pass
        except _Untrusted:
            if timeline.source != "decode":
                raise  # the caller rebuilds the timeline from a full decode
            # else: the frames missing so far are decoded front to back below
        if len(out) < len(wanted):
            # a seek landed after the frames it was meant to reach (some demuxers seek by
            # decode timestamp): decode the missing frames front to back instead
            rest = np.asarray([p for p in wanted.tolist() if p not in out], dtype=np.int64)
            out.update(self._read_sequential(path, timeline, rest))
        return out

    def _decode_run(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        timeline: Timeline,
        positions: np.ndarray,
        out: dict[int, np.ndarray],
        convert: bool = True,
    ) -> None:
        todo = set(positions.tolist())
        last = int(positions[-1])
        stats = self.last_stats
        keep = None
        if self.skip_nonref and timeline.source == "demux" and timeline.pts is not None:
            keep = set(timeline.pts[positions].tolist())
        previous_pts, previous_pos = None, -1
        damage: list[str] = []
        for frame in _safe_frames(container, stream, keep, damage):
            if damage and timeline.source == "demux":
                raise _Untrusted  # damaged packets: what follows depends on the whole past
            stats.decoded += 1
            pos = timeline.position(frame.pts)
            if timeline.reordered:
                if pos <= previous_pos:
                    return  # not the frames the index knows: the caller decodes front to back
                previous_pos = pos
            elif frame.pts is not None:
                if previous_pts is not None and frame.pts <= previous_pts:
                    raise _Untrusted  # output pts out of order: the timestamps are wrong
                previous_pts = frame.pts
            if pos in todo:
                out[pos] = self._to_rgb(frame) if convert else _EMPTY
                stats.converted += int(convert)
                todo.discard(pos)
                if not todo:
                    return
            if pos > last:
                return

    def _read_sequential(
        self, path: str, timeline: Timeline, wanted: np.ndarray
    ) -> dict[int, np.ndarray]:
        """Decode from the start, frame ``k`` being the ``k``-th output (or matched by pts)."""
        out: dict[int, np.ndarray] = {}
        todo = set(wanted.tolist())
        if not todo:
            return out
        last = max(todo)
        try:
            with _open(path) as container:
                stream = container.streams.video[0]
                self._configure(stream, damaged=timeline.source == "decode")
                # a full decode pass found these frames in this order: frame k is the k-th out
                by_order = timeline.pts is None or timeline.source == "decode"
                for k, frame in enumerate(_safe_frames(container, stream)):
                    self.last_stats.decoded += 1
                    pos = k if by_order else timeline.position(frame.pts)
                    if pos in todo:
                        out[pos] = self._to_rgb(frame)
                        self.last_stats.converted += 1
                        todo.discard(pos)
                        if not todo:
                            break
                    if by_order and k >= last:
                        break
        except (av.FFmpegError, OSError):
            pass
        return out


_EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)


def _seconds(pts: np.ndarray, time_base: Fraction) -> np.ndarray:
    """Seconds from the first frame, float64 ``[N]``."""
    return (pts - pts[0]).astype(np.float64) * float(time_base)
