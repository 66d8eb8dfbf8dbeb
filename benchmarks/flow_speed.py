"""TV-L1 optical flow cost per frame pair (``python -m datamodules.prepare flow``) on this CPU.

    python -m benchmarks.flow_speed                         # 64², 128×171, 256×340; 3 rounds
    python -m benchmarks.flow_speed --sizes 256x340 --rounds 5

For each frame size, OpenCV's default TV-L1 (``TVL1Settings()``) and the fast settings
(``TVL1Settings.fast()``) compute the flow of a real pair of consecutive frames (a synthetic
benchmark video, upscaled to the size), interleaved, one OpenCV thread (``prepare flow``
parallelises over videos instead); a figure is the fastest round (contention on a shared machine
only adds time) in milliseconds, CPU time beside wall time. Also timed: the whole per-pair
pipeline of ``extract_flow`` (decode, resize, grey, TV-L1, encode, two JPEG writes) on one video.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from datamodules.synthetic import render_video

    frames = render_video("checker-mark_top-grow", np.random.default_rng(0), size=64,
                          num_frames=16)
    grey = [cv2.cvtColor(cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC),
                         cv2.COLOR_RGB2GRAY) for f in frames[7:9]]
    return grey[0], grey[1]


def _time(fn, rounds: int) -> tuple[float, float]:
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return 1000 * best_wall, 1000 * best_cpu


def main() -> None:
    from datamodules.flow import TVL1Settings, extract_flow, tvl1
    from datamodules.synthetic import render_video, write_video

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["64x64", "128x171", "256x340"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = {"default": TVL1Settings(), "fast": TVL1Settings.fast()}
    print("TV-L1 per frame pair, ms (fastest of", args.rounds, "rounds; 1 OpenCV thread)")
    print(f"{'size':>9} {'settings':>8} {'wall ms':>9} {'cpu ms':>9}")
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        a, b = _pair(height, width)
        solvers = {name: tvl1(s) for name, s in settings.items()}
        results = {name: (float("inf"), float("inf")) for name in solvers}
        for _ in range(args.rounds):  # interleaved: both settings see the same load
            for name, solver in solvers.items():
                wall, cpu = _time(lambda s=solver, a=a, b=b: s.calc(a, b, None), 1)
                results[name] = (min(results[name][0], wall), min(results[name][1], cpu))
        for name, (wall, cpu) in results.items():
            print(f"{size:>9} {name:>8} {wall:9.1f} {cpu:9.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "v.mp4"
        write_video(video, render_video("checker-mark_top-grow", np.random.default_rng(0),
                                        size=64, num_frames=16))
        for name, s in settings.items():
            wall, cpu = _time(lambda s=s, name=name: extract_flow(
                video, Path(tmp) / f"out-{name}-{time.perf_counter_ns()}", settings=s),
                args.rounds)
            print(f"extract_flow, 64x64 video of 16 frames, {name}: "
                  f"{wall / 15:.1f} ms wall / {cpu / 15:.1f} ms cpu per pair")


if __name__ == "__main__":
    main()
