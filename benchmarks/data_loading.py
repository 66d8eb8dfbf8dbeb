"""Clip-loading throughput and memory: Finegrain's decoders against the usual alternatives.

    python benchmarks/data_loading.py            # ~2-3 min on 2 cores
    python benchmarks/data_loading.py --quick    # smoke run, ~30 s

Generates 10-second 340×256 H.264 videos (25 fps, key frame every 2 s, B-frames) and their JPEG
frame folders, then loads the same sampled clips, round-robin so every method sees the same CPU
conditions, with:

* ``finegrain pyav``      ``get_decoder("pyav").read`` (seek, decode forward, RGB only kept frames)
* ``+ train transform``   the same plus ``TrainTransform(224)`` (random-resized crop, flip)
* ``(a) decode-all``      PyAV decode every frame to RGB, then index (the common peer method)
* ``(b) raw decode``      decode exactly the frames the plan needs, no RGB, no transforms: the floor
* ``finegrain torchcodec`` and ``finegrain frames`` (JPEG folders)
* peers when installed (``pip install decord pytorchvideo``; never runtime deps):
  PyTorchVideo ``EncodedVideo(decoder="pyav")`` + ``UniformTemporalSubsample`` and decord
  ``VideoReader.get_batch``.

Single worker (this process), decoder threads set by ``--threads`` (default 1: with one
DataLoader worker per core, per-core throughput is what scales). Rates are per second of this
process's CPU time (``time.process_time``), which other load on a shared machine barely moves;
wall-clock rates are printed beside them. Clips are train samples:
8-segment uniform (TSN) and 16×4 dense (I3D), drawn with a fixed seed. Peak RSS is measured in a
fresh child process that loads ``--rss-samples`` clips (decode + train transform).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.decoders import get_decoder  # noqa: E402
from datamodules.decoders.pyav import PyAVDecoder  # noqa: E402
from datamodules.decoders.torchcodec import torchcodec_available  # noqa: E402
from datamodules.prepare import extract_frames  # noqa: E402
from datamodules.records import VideoRecord  # noqa: E402
from datamodules.sampling import clip_indices  # noqa: E402
from datamodules.transforms import TrainTransform  # noqa: E402

Method = Callable[[VideoRecord, VideoRecord, np.ndarray], object]


# --- data ----------------------------------------------------------------------------------


def synthetic_frames(num_frames: int, width: int, height: int, seed: int) -> np.ndarray:
    """Moving textured blobs over a drifting gradient: compresses like real footage (not
    like noise, not like a flat colour)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = rng.integers(0, 40, size=(height, width, 3)).astype(np.float32)
    blobs = rng.uniform(0, 1, size=(5, 6))  # cx, cy, vx, vy, radius, hue
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = np.stack([x / width * 160 + t, y / height * 160, (x + y) / 4 % 64], -1)
        frame += texture
        for cx, cy, vx, vy, r, hue in blobs:
            px = (cx * width + (vx - 0.5) * 8 * t) % width
            py = (cy * height + (vy - 0.5) * 8 * t) % height
            mask = (x - px) ** 2 + (y - py) ** 2 < (10 + 30 * r) ** 2
            frame[mask] = (hue * 255, 255 - hue * 255, 128 + 60 * np.sin(t / 7))
        out[t] = np.clip(frame, 0, 255)
    return out


def make_dataset(root: Path, count: int, seconds: float, fps: int = 25) -> list[Path]:
    """``count`` H.264 videos (340×256, GOP 2 s, B-frames) and their frame folders (cached)."""
    root.mkdir(parents=True, exist_ok=True)
    videos = []
    for i in range(count):
        path = root / f"video{i:02d}.mp4"
        if not path.exists():
            frames = synthetic_frames(round(seconds * fps), 340, 256, seed=i)
            tmp = path.with_suffix(".tmp.mp4")
            with av.open(str(tmp), "w") as container:
                stream = container.add_stream("libx264", rate=Fraction(fps))
                stream.width, stream.height, stream.pix_fmt = 340, 256, "yuv420p"
                stream.options = {"preset": "veryfast", "crf": "23", "g": str(2 * fps),
                                  "keyint_min": str(2 * fps), "sc_threshold": "0", "bf": "3"}
                for array in frames:
                    for packet in stream.encode(av.VideoFrame.from_ndarray(array, "rgb24")):
                        container.mux(packet)
                for packet in stream.encode(None):
                    container.mux(packet)
            tmp.rename(path)
        folder = root / path.stem
        if not folder.exists():
            extract_frames(path, folder, quality=90)
        videos.append(path)
    return videos


# --- methods -------------------------------------------------------------------------------


def decode_all_then_index(record: VideoRecord, threads: int) -> Callable[[np.ndarray], object]:
    def run(indices: np.ndarray) -> np.ndarray:
        with av.open(record.path) as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.codec_context.thread_count = "AUTO", threads
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return np.stack(frames)[indices]

    return run


def raw_decode_needed(decoder: PyAVDecoder) -> Method:
    """(b): ``decoder.read``'s own plan (same seeks, same skipped frames), no RGB conversion."""

    def run(record: VideoRecord, _frames: VideoRecord, indices: np.ndarray) -> int:
        return decoder.decode_only(record, indices).decoded

    return run


def peer_methods(threads: int, fps: int) -> dict[str, Method]:
    """PyTorchVideo and decord, when importable."""
    methods: dict[str, Method] = {}
    try:
        import decord

        decord.bridge.set_bridge("native")

        def run_decord(record, _frames, indices):
            reader = decord.VideoReader(record.path, ctx=decord.cpu(0), num_threads=threads)
            return reader.get_batch(indices.tolist()).asnumpy()

        methods["decord get_batch"] = run_decord
    except ImportError:
        pass
    try:
        if "torchvision.transforms.functional_tensor" not in sys.modules:
            # pytorchvideo 0.1.5 imports a module torchvision removed in 0.17; alias it
            import torchvision.transforms.functional as tvf

            sys.modules["torchvision.transforms.functional_tensor"] = tvf
        from pytorchvideo.data.encoded_video import EncodedVideo
        from pytorchvideo.transforms import UniformTemporalSubsample

        def run_ptv(record, _frames, indices):
            video = EncodedVideo.from_path(record.path, decoder="pyav", decode_audio=False)
            if len(indices) == 8:  # uniform: the whole video, 8 frames kept
                start, end = 0.0, float(video.duration)
            else:  # dense: the clip's window
                start = indices[0] / fps
                end = start + (indices[-1] - indices[0] + 1) / fps
            clip = video.get_clip(start, end)["video"]  # [C, T, H, W] float
            video.close()
            return UniformTemporalSubsample(len(indices))(clip)

        methods["pytorchvideo EncodedVideo"] = run_ptv
    except Exception as error:  # noqa: BLE001 (a broken peer install must not stop the run)
        print(f"  (pytorchvideo unavailable: {type(error).__name__}: {error})")
    return methods


# --- measurement ---------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_child(videos: list[str], samples: int, threads: int, queue) -> None:
    torch.set_num_threads(1)  # as in a DataLoader worker
    baseline = rss_mb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    decoder = get_decoder("pyav", thread_count=threads)
    transform = TrainTransform(224)
    gen = torch.Generator().manual_seed(1)
    trace = []
    for i in range(samples):
        record = VideoRecord(videos[i % len(videos)], 0)
        dense = i % 2 == 1
        idx = clip_indices(decoder.num_frames(record), sampling="dense" if dense else "uniform",
                           num_frames=16 if dense else 8, frame_interval=4, train=True,
                           generator=gen)[0]
        transform(decoder.read(record, idx), 0, generator=gen)
        if i in (0, 99, samples // 2, samples - 1):
            trace.append(rss_mb())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((baseline, peak_before, peak, trace))


def peak_rss(videos: list[Path], samples: int, threads: int) -> tuple:
    ctx = mp.get_context("spawn")  # a fresh interpreter: nothing inherited inflates the peak
    queue = ctx.Queue()
    proc = ctx.Process(target=_rss_child, args=([str(v) for v in videos], samples, threads,
                                                queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def bench_sampling(name: str, sampling: str, num_frames: int, interval: int, videos, args):
    gen = torch.Generator().manual_seed(0)
    pyav = get_decoder("pyav", thread_count=args.threads)
    plain = get_decoder("pyav", thread_count=args.threads, skip_nonref=False)
    frames_decoder = get_decoder("frames")
    transform = TrainTransform(224)
    records = [(VideoRecord(str(v), 0), VideoRecord(str(v.with_suffix("")), 0)) for v in videos]
    # the per-file scan (demux + tail check) happens once per process: time it apart
    t0 = time.perf_counter()
    counts = [pyav.num_frames(r) for r, _ in records]
    scan_ms = (time.perf_counter() - t0) * 1000 / len(records)
    for r, _ in records:
        plain.num_frames(r)
    methods: dict[str, Method] = {
        "finegrain pyav": lambda r, f, i: pyav.read(r, i),
        "  + train transform": lambda r, f, i: transform(pyav.read(r, i), 0),
        "  without frame skipping": lambda r, f, i: plain.read(r, i),
        "(a) decode-all, index": lambda r, f, i: decode_all_then_index(r, args.threads)(i),
        "(b) raw decode needed": raw_decode_needed(pyav),
    }
    if torchcodec_available():
        tc = get_decoder("torchcodec", num_threads=args.threads, thread_count=args.threads)
        for r, _ in records:
            tc.num_frames(r)
        methods["finegrain torchcodec"] = lambda r, f, i: tc.read(r, i)
    for _, f in records:
        frames_decoder.num_frames(f)
    methods["finegrain frames (JPEG)"] = lambda r, f, i: frames_decoder.read(f, i)
    methods.update(peer_methods(args.threads, 25))
    totals = dict.fromkeys(methods, 0.0)  # process CPU seconds
    walls = dict.fromkeys(methods, 0.0)
    runs = dict.fromkeys(methods, 0)
    slow = {"(a) decode-all, index", "pytorchvideo EncodedVideo"}
    decoded = converted = decoded_plain = 0
    order = np.random.default_rng(0)
    for n in range(args.rounds):
        k = n % len(records)
        record, folder = records[k]
        idx = clip_indices(counts[k], sampling=sampling, num_frames=num_frames,
                           frame_interval=interval, train=True, generator=gen)[0].numpy()
        # a fresh method order every round: no method always runs on the page cache (or the
        # CPU frequency) that the previous one warmed
        for label in order.permutation(list(methods)).tolist():
            method = methods[label]
            if label in slow and n >= args.slow_rounds:
                continue  # whole-video decoders are ~10× slower: fewer rounds, same clips
            w0, c0 = time.perf_counter(), time.process_time()
            method(record, folder, idx)
            totals[label] += time.process_time() - c0
            walls[label] += time.perf_counter() - w0
            runs[label] += 1
            if label == "finegrain pyav":
                decoded += pyav.last_stats.decoded
                converted += pyav.last_stats.converted
            elif label == "  without frame skipping":
                decoded_plain += plain.last_stats.decoded
    rate = {m: runs[m] / totals[m] for m in methods}
    wall = {m: runs[m] / walls[m] for m in methods}
    ours = rate["finegrain pyav"]
    print(f"\n{name}: {args.rounds} clips ({args.slow_rounds} for whole-video methods), "
          f"threads={args.threads}")
    print(f"  per clip, finegrain pyav decoded {decoded / args.rounds:.1f} frames "
          f"({decoded_plain / args.rounds:.1f} without skipping unreferenced ones) and converted "
          f"{converted / args.rounds:.1f}; first-touch scan of a file {scan_ms:.1f} ms")
    print(f"  {'method':<28}{'clips/s':>9}{'ms/clip':>9}{'÷ finegrain pyav':>18}"
          f"{'wall clips/s':>14}")
    for label in methods:
        print(f"  {label:<28}{rate[label]:>9.1f}{1000 / rate[label]:>9.1f}"
              f"{ours / rate[label]:>18.2f}{wall[label]:>14.1f}")
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/finegrain_bench"))
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--slow-rounds", type=int, default=8)
    parser.add_argument("--rss-samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="few clips, for a smoke test")
    args = parser.parse_args(argv)
    # a DataLoader worker runs with one intra-op thread; torch ops inside decoders and
    # transforms (torchcodec's colour conversion, resizes) slow down 5-10× on a busy machine
    # when they spin up a thread pool per call
    torch.set_num_threads(1)
    if args.quick:
        args.rounds, args.slow_rounds, args.rss_samples, args.videos = 12, 3, 100, 3
    start = time.perf_counter()
    print(f"python {platform.python_version()}, torch {torch.__version__}, av {av.__version__}, "
          f"{os.cpu_count()} CPUs")
    videos = make_dataset(args.workdir, args.videos, args.seconds)
    print(f"data: {len(videos)} × {args.seconds:g} s 340×256 H.264 (25 fps, GOP 50, B-frames) "
          f"and JPEG frame folders in {args.workdir} ({time.perf_counter() - start:.0f} s)")
    uniform = bench_sampling("uniform, 8 segments (TSN)", "uniform", 8, 1, videos, args)
    dense = bench_sampling("dense, 16 frames × interval 4 (I3D)", "dense", 16, 4, videos, args)
    baseline, peak_imports, peak, trace = peak_rss(videos, args.rss_samples, args.threads)
    print(f"\nfinegrain pyav + train transform, {args.rss_samples} clips (uniform/dense "
          f"alternating) in a fresh process: RSS after imports {baseline:.0f} MB (peak while "
          f"importing {peak_imports:.0f} MB); RSS after 1 / 100 / half / all clips: "
          f"{' / '.join(f'{v:.0f}' for v in trace)} MB; peak {peak:.0f} MB")
    print("\nsummary (targets: ≥ 3× (a); within 1.25× of (b); frames ≥ 5× video path)")
    for name, rate in (("uniform", uniform), ("dense", dense)):
        ours = rate["finegrain pyav"]
        print(f"  {name:<8} vs (a) {ours / rate['(a) decode-all, index']:.2f}×   "
              f"(b)/ours {rate['(b) raw decode needed'] / ours:.2f}   "
              f"frames vs pyav {rate['finegrain frames (JPEG)'] / ours:.2f}×")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
