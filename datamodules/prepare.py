"""Dataset preparation: extract frame folders, TV-L1 flow, and/or re-encode to a short side.

    python -m datamodules.prepare frames SRC DST [--short-side 256] [--template "{:05d}.jpg"]
                                                 [--start-index 1] [--quality 90] [--workers 4]
    python -m datamodules.prepare flow SRC DST [--short-side 256] [--rgb [TEMPLATE]] [--fast]
    python -m datamodules.prepare resize SRC DST --short-side 256 [--crf 23] [--keyint-sec 2]

``SRC`` is a video file or a folder searched recursively for videos; outputs mirror its
layout under ``DST``: ``DST/<class>/<video>/00001.jpg`` for ``frames``;
``DST/<class>/<video>/flow_x_00001.jpg`` + ``flow_y_00001.jpg`` for ``flow`` (``datamodules.flow``;
``--rgb`` also writes ``img_00001.jpg``…, the MMAction2 / TSN layout, and flow written into a
folder that ``frames`` filled keeps its frames); ``DST/<class>/<video>.mp4`` for ``resize``.
Each output is written under a temporary name and renamed when complete, so an interrupted run
resumes where it stopped (finished outputs are skipped unless ``--overwrite``).
Videos are processed in parallel worker processes behind a rich progress bar; a video that fails
is reported at the end (exit status 1) without stopping the others.

Frame ``k`` of a folder is frame ``k`` of a plain sequential decode, i.e. what
``get_decoder("pyav").read(record, [k])`` returns for the source file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torchvision.io import encode_jpeg, encode_png

from datamodules.annotations import VIDEO_EXTENSIONS
from datamodules.decoders._common import quiet_image_codec_deprecation
from datamodules.decoders.pyav import sequential_frames
from datamodules.parallel import map_with_progress
from datamodules.transforms import short_side_size

quiet_image_codec_deprecation()

__all__ = ["Job", "extract_frames", "reencode", "find_videos", "plan", "main"]

PARTIAL = ".partial"


@dataclass(frozen=True)
class Job:
    """One video to prepare: ``source`` → ``target`` (folder for frames, file for resize)."""

    source: Path
    target: Path


def find_videos(src: Path, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """``src`` itself if it is a file, else every video below it, sorted (stable job order)."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"source {src} does not exist")
    exts = {e.lower() for e in extensions}
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def plan(src: Path, dst: Path, mode: str, videos: Iterable[Path]) -> list[Job]:
    """Map sources to targets, keeping the layout below ``src``."""
    jobs = []
    for video in videos:
        rel = video.relative_to(src) if src.is_dir() else Path(video.name)
        folder = mode in ("frames", "flow")
        target = dst / rel.with_suffix("") if folder else dst / rel.with_suffix(".mp4")
        jobs.append(Job(video, target))
    return jobs


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Per-frame tensor ops are tiny: an intra-op thread pool only adds synchronisation, which
    on a busy machine makes a 0.3 ms JPEG encode take 20 ms. Restored on exit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resize_rgb(array: np.ndarray, short_side: int | None) -> torch.Tensor:
    """``uint8 [H, W, 3]`` → ``uint8 [3, h, w]`` with the short side resized (antialiased)."""
    import torchvision.transforms.v2.functional as TF

    image = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if short_side is None:
        return image
    size = short_side_size(image.shape[1], image.shape[2], short_side)
    if size == tuple(image.shape[1:]):
        return image.contiguous()
    return TF.resize(image, list(size), antialias=True).contiguous()


def _fresh_partial(target: Path) -> Path:
    partial = target.with_name(target.name + PARTIAL)
    if partial.is_dir():
        shutil.rmtree(partial)
    elif partial.exists():
        partial.unlink()
    partial.parent.mkdir(parents=True, exist_ok=True)
    return partial


@_one_torch_thread()
def extract_frames(
    source: Path,
    target: Path,
    *,
    short_side: int | None = None,
    template: str = "{:05d}.jpg",
    start_index: int = 1,
    quality: int = 90,
) -> int:
    """Write every decoded frame of ``source`` as an image into the folder ``target``.

    JPEG for ``.jpg``/``.jpeg`` templates (``quality``), PNG (lossless) for ``.png``.
    Returns the number of frames written.
    """
    if target.exists():
        shutil.rmtree(target)  # only reached with overwrite: plan() skips finished targets
    partial = _fresh_partial(target)
    partial.mkdir()
    suffix = template.lower().rsplit(".", 1)[-1]
    if suffix not in ("jpg", "jpeg", "png"):
        raise ValueError(f"template {template!r} must end in .jpg, .jpeg or .png")
    count = 0
    # the decoders' own sequential decode (same threading, damaged packets skipped the same
    # way), so frame folders hold exactly the frames the video path reads
    for frame in sequential_frames(str(source)):
        image = _resize_rgb(frame.to_ndarray(format="rgb24"), short_side)
        data = encode_png(image) if suffix == "png" else encode_jpeg(image, quality=quality)
        (partial / template.format(start_index + count)).write_bytes(data.numpy().tobytes())
        count += 1
    if count == 0:
        shutil.rmtree(partial)
        raise RuntimeError(f"{source}: no frames decode")
    partial.rename(target)
    return count


@_one_torch_thread()
def reencode(
    source: Path,
    target: Path,
    *,
    short_side: int,
    crf: int = 23,
    preset: str = "veryfast",
    keyint_sec: float = 2.0,
) -> int:
    """Re-encode ``source`` to H.264 MP4 with the short side resized to ``short_side`` (even
    sizes, as yuv420p needs), same frame rate, a key frame every ``keyint_sec`` seconds (short
    GOPs make the seek-decoding of sampled clips cheap), no audio. Returns frames written."""
    partial = _fresh_partial(target)
    count = 0
    with av.open(str(source)) as src:
        in_stream = src.streams.video[0]
        in_stream.thread_type = "AUTO"
        rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(25)
        height, width = in_stream.codec_context.height, in_stream.codec_context.width
        h, w = short_side_size(height, width, short_side)
        h, w = h + h % 2, w + w % 2
        with av.open(str(partial), mode="w", format="mp4") as dst:
            out = dst.add_stream("libx264", rate=rate)
            out.width, out.height, out.pix_fmt = w, h, "yuv420p"
            keyint = max(1, round(float(rate) * keyint_sec))
            out.options = {"crf": str(crf), "preset": preset, "g": str(keyint)}
            for frame in src.decode(in_stream):
                resized = frame.reformat(width=w, height=h, format="yuv420p",
                                         interpolation="AREA")
                # re-timed at a constant rate: source timestamps may be irregular or missing
                resized.pts, resized.time_base = count, 1 / Fraction(rate)
                for packet in out.encode(resized):
                    dst.mux(packet)
                count += 1
            for packet in out.encode(None):
                dst.mux(packet)
    if count == 0:
        partial.unlink()
        raise RuntimeError(f"{source}: no frames decode")
    os.replace(partial, target)
    return count


def _run(job: Job, mode: str, options: dict) -> tuple[Job, int | None, str | None]:
    try:
        if mode == "frames":
            return job, extract_frames(job.source, job.target, **options), None
        if mode == "flow":
            from datamodules.flow import extract_flow

            return job, extract_flow(job.source, job.target, **options), None
        return job, reencode(job.source, job.target, **options), None
    except Exception as error:  # noqa: BLE001 (one bad video must not stop the batch)
        suffix = ".flow" + PARTIAL if mode == "flow" else PARTIAL
        partial = job.target.with_name(job.target.name + suffix)
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.exists():
            partial.unlink(missing_ok=True)
        return job, None, f"{type(error).__name__}: {error}"


def prepare(
    jobs: Sequence[Job],
    mode: str,
    options: dict,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[int, int, list[tuple[Job, str]]]:
    """Run ``jobs``; returns ``(done, skipped, failures)``."""
    todo = [j for j in jobs if overwrite or not _done(j, mode, options)]
    skipped = len(jobs) - len(todo)
    failures: list[tuple[Job, str]] = []
    done = 0
    run = functools.partial(_run, mode=mode, options=options)
    for job, _, error in map_with_progress(run, todo, workers=workers, progress=progress,
                                           description=f"{mode} ({skipped} already done)"):
        done, failures = _account(job, error, done, failures)
    return done, skipped, failures


def _done(job: Job, mode: str, options: dict) -> bool:
    if mode == "flow":  # the folder may exist already, holding RGB frames only
        from datamodules.flow import flow_done

        return flow_done(job.target, options.get("start_index", 1))
    return job.target.exists()


def _account(job, error, done, failures):
    if error is None:
        return done + 1, failures
    return done, [*failures, (job, error)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m datamodules.prepare",
        description="Extract frame folders or TV-L1 flow, or re-encode videos to a short side "
        "(resumable, parallel).",
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    for name, help_text in (("frames", "extract one image per frame"),
                            ("flow", "TV-L1 optical flow, one x and one y JPEG per frame pair"),
                            ("resize", "re-encode to H.264 with a given short side")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("src", type=Path, help="a video file or a folder of videos")
        p.add_argument("dst", type=Path, help="output folder")
        p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
        p.add_argument("--overwrite", action="store_true", help="redo finished outputs")
        p.add_argument("--ext", nargs="*", default=list(VIDEO_EXTENSIONS),
                       help="video extensions to look for in a source folder")
        p.add_argument("--no-progress", action="store_true")
        if name == "frames":
            p.add_argument("--short-side", type=int, default=None)
            p.add_argument("--template", default="{:05d}.jpg")
            p.add_argument("--start-index", type=int, default=1, choices=(0, 1))
            p.add_argument("--quality", type=int, default=90)
        elif name == "flow":
            p.add_argument("--short-side", type=int, default=None)
            p.add_argument("--start-index", type=int, default=1, choices=(0, 1))
            p.add_argument("--quality", type=int, default=90)
            p.add_argument("--rgb", nargs="?", const="img_{:05d}.jpg", default=None,
                           metavar="TEMPLATE", help="also write the RGB frames (default name "
                           "img_{:05d}.jpg, the MMAction2 / TSN layout)")
            p.add_argument("--fast", action="store_true",
                           help="fewer TV-L1 scales, warps and iterations (TVL1Settings.fast)")
        else:
            p.add_argument("--short-side", type=int, required=True)
            p.add_argument("--crf", type=int, default=23)
            p.add_argument("--preset", default="veryfast")
            p.add_argument("--keyint-sec", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.mode == "frames":
        options = dict(short_side=args.short_side, template=args.template,
                       start_index=args.start_index, quality=args.quality)
    elif args.mode == "flow":
        from datamodules.flow import TVL1Settings, tvl1

        try:
            tvl1()  # fails now, with the install hint, if OpenCV contrib is missing
        except ImportError as error:
            parser.error(str(error))
        options = dict(short_side=args.short_side, start_index=args.start_index,
                       quality=args.quality, rgb_template=args.rgb,
                       settings=TVL1Settings.fast() if args.fast else TVL1Settings())
    else:
        options = dict(short_side=args.short_side, crf=args.crf, preset=args.preset,
                       keyint_sec=args.keyint_sec)
    videos = find_videos(args.src, args.ext)
    jobs = plan(args.src, args.dst, args.mode, videos)
    done, skipped, failures = prepare(jobs, args.mode, options, workers=args.workers,
                                      overwrite=args.overwrite, progress=not args.no_progress)
    print(f"{args.mode}: {done} done, {skipped} skipped (already done), {len(failures)} failed")
    for job, error in failures:
        print(f"  FAILED {job.source}: {error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
