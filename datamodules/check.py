"""The dataset doctor: ``python -m datamodules.check DATA_DIR``.

Walks a folder (or takes single files), decodes every video front to back once and reports per
file what a loader would otherwise find out in the middle of a run:

- the frames that really decode, beside the count the header claims and the packets;
- timestamp problems: decoder output pts out of order, missing or repeated, packet pts that
  follow decode order although the codec reorders frames (B-frames muxed without composition
  offsets, or into AVI);
- damage: packets the decoder rejects, frames it flags as decoded with errors;
- frame-size changes mid-stream (no single ``[T, H, W, 3]`` clip can hold them);
- unreadable files (empty, not a video, no video stream, nothing decodes);
- with ``--verify``: whether ``get_decoder("pyav").read`` returns the frames of the sequential
  decode at uniform and dense test indices and at seeded train indices.

It prints a summary table (and one row per file with a problem) and writes a machine-readable
JSON report (``--json``). ``--save-index FILE`` stores the timeline the PyAV decoder built for
every readable file; ``decoder_options: {index: FILE}`` (or ``get_decoder("pyav", index=FILE)``)
then loads it, so DataLoader workers never rescan, and files whose timestamps are wrong are
read from their decode-order index from the first sample on. Runs in parallel
(``--workers``), with a progress bar.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from datamodules.annotations import VIDEO_EXTENSIONS
from datamodules.decoders import DecodeError
from datamodules.decoders.index_file import timeline_to_json
from datamodules.decoders.pyav import PyAVDecoder, sequential_frames
from datamodules.parallel import map_with_progress
from datamodules.prepare import find_videos
from datamodules.records import VideoRecord
from datamodules.sampling import clip_indices

__all__ = ["VideoReport", "check_video", "find_videos", "main"]


@dataclass
class VideoReport:
    """What ``check_video`` found about one file (every field goes into the JSON report)."""

    path: str
    status: str = "ok"  # "ok" | "problems" | "unreadable"
    error: str = ""
    codec: str = ""
    pix_fmt: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    header_frames: int = 0
    packets: int = 0
    decoded_frames: int = 0
    decoder_frames: int = 0  # what the PyAV backend's num_frames says
    index: str = ""  # how the decoder addresses frames (see ``_index_kind``)
    problems: list[str] = field(default_factory=list)
    frame_sizes: list[list[int]] = field(default_factory=list)
    verified_frames: int = 0
    mismatched_frames: list[int] = field(default_factory=list)
    timeline: dict[str, Any] | None = None  # for --save-index (left out of the JSON report)


def _packet_problems(path: str, report: VideoReport) -> None:
    """Header, stream properties and what the packets' timestamps say."""
    with av.open(path) as container:
        if not container.streams.video:
            raise DecodeError(path, "no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        report.codec, report.pix_fmt = ctx.name, ctx.pix_fmt or ""
        report.width, report.height = ctx.width, ctx.height
        rate = stream.average_rate or stream.guessed_rate
        report.fps = round(float(rate), 3) if rate else 0.0
        report.header_frames = stream.frames or 0
        stamps = []
        try:
            for packet in container.demux(stream):
                if packet.size:
                    stamps.append(packet.pts)
        except (av.FFmpegError, OSError) as error:
            report.problems.append(f"demuxing stops early ({error})")
        reorders = bool(ctx.has_b_frames)
    report.packets = len(stamps)
    known = [s for s in stamps if s is not None]
    if len(known) < len(stamps):
        report.problems.append(f"{len(stamps) - len(known)} packets without pts")
    if len(set(known)) < len(known):
        report.problems.append(f"{len(known) - len(set(known))} repeated packet pts")
    if reorders and len(known) > 2 and bool(np.all(np.diff(known) > 0)):
        report.problems.append("packet pts follow decode order although the codec reorders "
                               "frames (B-frames muxed without composition offsets)")


def _decode_problems(path: str, report: VideoReport, hashes: list[bytes] | None) -> None:
    """One sequential decode: the real count, output pts, damage and frame sizes."""
    damage: list[str] = []
    stamps: list[int | None] = []
    sizes: list[tuple[int, int]] = []
    changes: list[str] = []
    for frame in sequential_frames(path, damage=damage):
        size = (frame.width, frame.height)
        if sizes and size != sizes[-1]:
            changes.append(f"{sizes[-1][0]}x{sizes[-1][1]} -> {size[0]}x{size[1]} at frame "
                           f"{len(stamps)}")
        sizes.append(size)
        stamps.append(frame.pts)
        if hashes is not None:
            hashes.append(hashlib.blake2b(frame.to_ndarray(format="rgb24").tobytes(),
                                          digest_size=16).digest())
    report.decoded_frames = len(stamps)
    report.frame_sizes = [list(s) for s in dict.fromkeys(sizes)]
    if not stamps:
        raise DecodeError(path, "no decodable video frames")
    if report.header_frames and report.header_frames != len(stamps):
        report.problems.append(f"header claims {report.header_frames} frames, "
                               f"{len(stamps)} decode")
    known = [s for s in stamps if s is not None]
    if len(known) < len(stamps):
        report.problems.append(f"{len(stamps) - len(known)} decoded frames without pts")
    if len(set(known)) < len(known):
        report.problems.append(f"{len(known) - len(set(known))} repeated frame pts")
    backwards = int(np.sum(np.diff(known) <= 0)) if len(known) > 1 else 0
    if backwards:
        report.problems.append(f"decoder output pts go backwards {backwards} times: the "
                               "timestamps do not describe presentation order")
    rejected = sum(d.startswith("packet") for d in damage)
    if rejected:
        report.problems.append(f"{rejected} packets rejected by the decoder")
    if len(damage) > rejected:
        report.problems.append(f"{len(damage) - rejected} frames decoded with errors")
    if changes:
        report.problems.append("frame size changes: " + "; ".join(changes[:3]))


def _index_kind(decoder: PyAVDecoder, path: str) -> str:
    timeline = decoder.timeline(path)
    if timeline.source == "demux":
        return "packets"  # seek by the packets' timestamps (the fast, common case)
    if timeline.pts is None:
        return "decode order, front to back"  # timestamps missing or repeated
    if timeline.reordered:
        return "decode order, seekable"  # timestamps wrong but unique
    return "full decode"


def _verify(decoder: PyAVDecoder, path: str, hashes: list[bytes], report: VideoReport) -> None:
    """``decoder.read`` at test and train indices against the sequential decode's frames."""
    record = VideoRecord(path=path, label=0)
    n = len(hashes)
    sets = [clip_indices(n, sampling="uniform", num_frames=8, num_clips=3, train=False),
            clip_indices(n, sampling="dense", num_frames=16, frame_interval=4, num_clips=2,
                         train=False)]
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        sets.append(clip_indices(n, sampling="uniform", num_frames=8, train=True, generator=g))
        sets.append(clip_indices(n, sampling="dense", num_frames=16, frame_interval=2,
                                 train=True, generator=g))
    mismatched: set[int] = set()
    checked: set[int] = set()
    for indices in sets:
        flat = indices.flatten()
        frames = decoder.read(record, flat).numpy()
        for frame, i in zip(frames, flat.tolist(), strict=True):
            checked.add(i)
            digest = hashlib.blake2b(np.ascontiguousarray(frame).tobytes(),
                                     digest_size=16).digest()
            if digest != hashes[i]:
                mismatched.add(i)
    report.verified_frames = len(checked)
    report.mismatched_frames = sorted(mismatched)
    if mismatched:
        report.problems.append(f"decoder differs from the sequential decode at "
                               f"{len(mismatched)} of {len(checked)} frames checked")


def check_video(path: str | os.PathLike, *, verify: bool = False) -> VideoReport:
    """Everything above for one file; never raises (an unreadable file is a report too)."""
    path = str(path)
    report = VideoReport(path=path)
    hashes: list[bytes] | None = [] if verify else None
    try:
        if os.path.getsize(path) == 0:
            raise DecodeError(path, "empty file")
        _packet_problems(path, report)
        _decode_problems(path, report, hashes)
        decoder = PyAVDecoder(thread_count=1)
        report.decoder_frames = decoder.num_frames(VideoRecord(path=path, label=0))
        if hashes is not None:
            _verify(decoder, path, hashes, report)
            report.decoder_frames = decoder.num_frames(VideoRecord(path=path, label=0))
        if report.decoder_frames != report.decoded_frames:
            report.problems.append(f"the decoder counts {report.decoder_frames} frames, a "
                                   f"sequential decode {report.decoded_frames}")
        report.index = _index_kind(decoder, path)
        report.timeline = timeline_to_json(path, decoder.timeline(path))
    except (DecodeError, av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        report.status, report.error = "unreadable", str(getattr(error, "reason", error))
        return report
    report.status = "problems" if report.problems else "ok"
    return report


def summarise(reports: Sequence[VideoReport]) -> dict[str, Any]:
    """Counts for the report's ``summary``: statuses, problem kinds, index kinds."""
    kinds: Counter[str] = Counter()
    for report in reports:
        for problem in report.problems:
            kinds[_problem_kind(problem)] += 1
    return {
        "videos": len(reports),
        "ok": sum(r.status == "ok" for r in reports),
        "with_problems": sum(r.status == "problems" for r in reports),
        "unreadable": sum(r.status == "unreadable" for r in reports),
        "decoded_frames": sum(r.decoded_frames for r in reports),
        "header_frames": sum(r.header_frames for r in reports),
        "problems": dict(sorted(kinds.items())),
        "index": dict(Counter(r.index for r in reports if r.index)),
    }


def _problem_kind(problem: str) -> str:
    """A problem's message without its numbers (``"header claims N frames, M decode"``)."""
    return " ".join(w if not any(c.isdigit() for c in w) else "N" for w in problem.split())


def print_report(reports: Sequence[VideoReport], summary: dict[str, Any], root: str) -> None:
    from rich.console import Console
    from rich.table import Table

    # wide enough for the table when printing to a file or a pipe (rich assumes 80 columns)
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"datamodules.check {root}")
    for name in ("file", "status", "codec", "size", "header", "decode", "index", "problems"):
        table.add_column(name, overflow="fold")
    for r in reports:
        table.add_row(os.path.relpath(r.path, root) if os.path.isdir(root) else r.path,
                      r.status, f"{r.codec} {r.pix_fmt}".strip(),
                      f"{r.width}x{r.height}" if r.width else "",
                      str(r.header_frames or "-"), str(r.decoded_frames), r.index,
                      r.error or "; ".join(r.problems))
    console.print(table)
    console.print(f"{summary['videos']} videos: {summary['ok']} ok, "
                  f"{summary['with_problems']} with problems, {summary['unreadable']} "
                  f"unreadable; {summary['decoded_frames']} frames decode "
                  f"(headers claim {summary['header_frames']})")
    for kind, count in summary["problems"].items():
        console.print(f"  {count} × {kind}")


def save_index(reports: Sequence[VideoReport], path: Path) -> int:
    """Write the decoders' timelines of the readable files; returns how many."""
    entries = [r.timeline for r in reports if r.timeline is not None]
    path.write_text(json.dumps({"version": 1, "timelines": entries}))
    return len(entries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datamodules.check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path, help="a folder of videos, or one video")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--json", type=Path, default=None,
                        help="write the machine-readable report here")
    parser.add_argument("--save-index", type=Path, default=None,
                        help="write the decoder's per-file timelines here (decoder option "
                             "index=FILE loads them)")
    parser.add_argument("--verify", action="store_true",
                        help="also compare decoder reads with the sequential decode")
    parser.add_argument("--ext", nargs="*", default=list(VIDEO_EXTENSIONS))
    parser.add_argument("--all", action="store_true", help="list every file, not only "
                                                           "those with problems")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    videos = find_videos(args.data_dir, args.ext)
    run = functools.partial(check_video, verify=args.verify)
    reports = sorted(map_with_progress(run, [str(v) for v in videos], workers=args.workers,
                                       description="checking", progress=not args.no_progress),
                     key=lambda r: r.path)
    summary = summarise(reports)
    shown = reports if args.all else [r for r in reports if r.status != "ok"]
    print_report(shown, summary, str(args.data_dir))
    if args.json is not None:
        payload = {"data_dir": str(args.data_dir), "summary": summary,
                   "videos": [{k: v for k, v in asdict(r).items() if k != "timeline"}
                              for r in reports]}
        args.json.write_text(json.dumps(payload, indent=1))
        print(f"report: {args.json}")
    if args.save_index is not None:
        print(f"index of {save_index(reports, args.save_index)} videos: {args.save_index}")
    return 1 if summary["unreadable"] or summary["with_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
