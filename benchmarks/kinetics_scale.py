"""Kinetics-scale record handling: setup time and the memory of an epoch with DataLoader workers.

    python benchmarks/kinetics_scale.py                 # 240K train + 20K val, ~3-5 min on 2 cores
    python benchmarks/kinetics_scale.py --train 24000 --val 2000   # a smaller smoke run
    python benchmarks/kinetics_scale.py --setup-only --baseline /tmp/old --rounds 3

``--baseline DIR``: a checkout of other code (``git worktree add /tmp/old <commit>``); its
``setup("fit")`` and this checkout's are timed alternately, each in a fresh process, so both
sides see the same load (the ratio is the figure to read on a shared machine).

Writes (once, cached in ``--workdir``) a Kinetics-400 layout: ``train.csv`` / ``validate.csv``
with ``--train`` / ``--val`` rows over 400 classes and one empty file per clip under
``train/<class>/`` and ``val/<class>/`` (only the names matter here: the decoder is fake). Then:

1. ``KineticsDataModule.setup("fit")`` wall time: CSV parsing, the walk of the video folder, the
   lookup of every clip, the split summary.
2. One epoch over a 260K-record dataset (train + val records) with a fake decoder (zeros,
   ``[8, 32, 32, 3]``) and a trivial transform, with 0 and 4 DataLoader workers, for the
   records stored as ``RecordTable`` (numpy columns, what ``VideoDataset`` uses) and as a plain
   ``list`` of ``VideoRecord`` objects (what it used before). Peak memory is sampled every 0.1 s
   over the main process and its workers: the sum of RSS, and the sum of PSS (proportional set
   size: shared pages counted once across processes, so it grows when workers copy pages).
"""

from __future__ import annotations

import argparse
import csv
import gc
import itertools
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules import KineticsDataModule, VideoDataset  # noqa: E402
from datamodules.dataset import collate_samples  # noqa: E402
from datamodules.kinetics import kinetics_clip_name  # noqa: E402
from datamodules.records import RecordTable, VideoRecord  # noqa: E402
from datamodules.transforms import TestViews  # noqa: E402

CLASSES = [f"class {i:03d}" for i in range(400)]


def make_layout(root: Path, train: int, val: int) -> None:
    """CSVs and empty clip files (cached: a marker file says the layout is complete)."""
    done = root / f".done_{train}_{val}"
    if done.exists():
        return
    for split, count, csv_name in (("train", train, "train.csv"), ("val", val, "validate.csv")):
        with open(root / csv_name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            for i in range(count):
                label = CLASSES[i % len(CLASSES)]
                youtube_id = f"{split[0]}{i:010d}"
                writer.writerow([label, youtube_id, 10, 20, split])
                folder = root / split / label
                if i < len(CLASSES):
                    folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{kinetics_clip_name(youtube_id, 10, 20)}.mp4").touch()
    done.touch()


class FakeDecoder:
    """Zeros ``[T, 32, 32, 3]``: the loader's own cost, not decoding, is what is measured."""

    def num_frames(self, record: VideoRecord) -> int:
        return 64

    def read(self, record: VideoRecord, indices) -> torch.Tensor:
        return torch.zeros(len(indices), 32, 32, 3, dtype=torch.uint8)


def identity_transform(frames: torch.Tensor, label: int, generator=None):
    return frames.permute(3, 0, 1, 2), label


def _memory(pids: list[int]) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) in MB over ``pids`` (from /proc/<pid>/smaps_rollup)."""
    rss = pss = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) / 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return rss, pss


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def epoch_peak(records, workers: int, batch_size: int) -> tuple[float, float, float, float]:
    """(baseline RSS, peak RSS, baseline PSS, peak PSS) in MB for one epoch over ``records``
    (a ``RecordTable``, or a ``list`` the dataset keeps as it is, as it did before)."""
    dataset = VideoDataset(records, FakeDecoder(), mode="train", sampling="uniform",
                           num_frames=8, train_transform=identity_transform,
                           test_views=TestViews(32))
    if isinstance(records, list):
        dataset.records = records  # VideoDataset would make a RecordTable of it
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        collate_fn=collate_samples)
    me = os.getpid()
    base_rss, base_pss = _memory([me])
    peak = [base_rss, base_pss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss, pss = _memory([me, *_children(me)])
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    seen = 0
    for batch in loader:
        seen += batch["label"].numel()
    stop.set()
    thread.join()
    assert seen == len(records)
    return base_rss, peak[0], base_pss, peak[1]


_TIME_SETUP = """
import sys, time
sys.path.insert(0, sys.argv[1])
from datamodules import KineticsDataModule
dm = KineticsDataModule(sys.argv[2], num_workers=0)
wall, cpu = time.perf_counter(), time.process_time()
dm.setup("fit")
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def time_setup(source: Path, workdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``setup("fit")`` in a fresh process, with the datamodules of the
    checkout ``source``."""
    result = subprocess.run([sys.executable, "-c", _TIME_SETUP, str(source), str(workdir)],
                            capture_output=True, text=True, check=True)
    wall, cpu = result.stdout.split()[-2:]
    return float(wall), float(cpu)


def compare_setup(baseline: Path, workdir: Path, rounds: int) -> None:
    """Baseline and this checkout's ``setup("fit")``, alternated; medians and their ratio."""
    here = Path(__file__).resolve().parents[1]
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "this": []}
    for _ in range(rounds):
        for side, source in (("baseline", baseline), ("this", here)):
            times[side].append(time_setup(source, workdir))
            wall, cpu = times[side][-1]
            print(f"  {side:<9} wall {wall:5.1f} s  CPU {cpu:5.1f} s  "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    medians = {side: [statistics.median(column) for column in zip(*rows, strict=True)]
               for side, rows in times.items()}
    (old_wall, old_cpu), (new_wall, new_cpu) = medians["baseline"], medians["this"]
    print(f"setup('fit') medians over {rounds} rounds: baseline {old_wall:.1f} s wall / "
          f"{old_cpu:.1f} s CPU, this {new_wall:.1f} s / {new_cpu:.1f} s; baseline/this "
          f"{old_wall / new_wall:.2f}x wall, {old_cpu / new_cpu:.2f}x CPU")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/finegrain_kinetics_scale"))
    parser.add_argument("--train", type=int, default=240_000)
    parser.add_argument("--val", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--setup-only", action="store_true",
                        help="time setup('fit') only (no epochs)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of other code whose setup('fit') to time alternately")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --baseline timing")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_layout(args.workdir, args.train, args.val)
    print(f"layout: {args.train} train + {args.val} val clips in {args.workdir} "
          f"({time.perf_counter() - t0:.0f} s)")

    if args.baseline is not None:
        compare_setup(args.baseline, args.workdir, args.rounds)
    dm = KineticsDataModule(str(args.workdir), num_workers=0)
    t0, cpu = time.perf_counter(), time.process_time()
    dm.setup("fit")
    setup_s, cpu = time.perf_counter() - t0, time.process_time() - cpu
    train, val = dm.datasets["train"].records, dm.datasets["val"].records
    print(f"setup('fit'): {len(train)} train + {len(val)} val records in {setup_s:.1f} s "
          f"({cpu:.1f} s CPU; load average {os.getloadavg()[0]:.1f})")
    if args.setup_only:
        return 0

    # one table of the 260K records, and no list of record objects alive while it is measured
    # (the workers' garbage collector would walk such a list and copy its pages)
    records = RecordTable.from_records(itertools.chain(train, val))
    del dm, train, val
    gc.collect()
    rows = []
    for storage in ("RecordTable", "list"):
        data = records if storage == "RecordTable" else list(records)
        for workers in (0, 4):
            t0 = time.perf_counter()
            base_rss, rss, base_pss, pss = epoch_peak(data, workers, args.batch_size)
            rows.append((storage, workers, base_rss, rss, base_pss, pss,
                         time.perf_counter() - t0))
        del data
    print(f"\none epoch over {len(records)} records (fake decoder), peak memory of the main "
          "process + workers (MB):")
    print(f"  {'records as':<12}{'workers':>8}{'RSS before':>12}{'peak RSS':>10}"
          f"{'PSS before':>12}{'peak PSS':>10}{'epoch s':>9}")
    for storage, workers, base_rss, rss, base_pss, pss, seconds in rows:
        print(f"  {storage:<12}{workers:>8}{base_rss:>12.0f}{rss:>10.0f}{base_pss:>12.0f}"
              f"{pss:>10.0f}{seconds:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
