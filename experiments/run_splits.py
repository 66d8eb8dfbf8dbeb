"""Train and test one config on UCF101's or HMDB51's three official splits; report the mean.

    python experiments/run_splits.py --config experiments/my_ucf101.yaml \\
        [--splits 1 2 3] [--output results.json] [-- --trainer.max_epochs=30 ...]

The config is an ordinary ``cli.py`` config whose ``data`` is ``datamodules.UCF101DataModule``
or ``datamodules.HMDB51DataModule``; each split runs ``fit`` then ``test`` (on the best
checkpoint when a ``ModelCheckpoint`` tracks one, else on the last weights) with
``--data.init_args.split=N`` added. Anything after ``--`` is passed to the CLI for every split.
Prints every test metric per split and its mean ± standard deviation over the splits (the
protocol these datasets are reported with), and writes them as JSON with ``--output``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_split(config: Sequence[str], split: int, extra: Sequence[str]) -> dict[str, float]:
    """Fit and test one split; the test metrics as plain floats."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from cli import main as cli_main

    args = [arg for path in config for arg in ("--config", path)]
    cli = cli_main(args=[*args, *extra, f"--data.init_args.split={split}"], run=False)
    data_class = type(cli.datamodule).__name__
    if not hasattr(cli.datamodule, "split"):
        raise SystemExit(f"{data_class} has no official splits; use UCF101DataModule or "
                         "HMDB51DataModule")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    checkpoint = cli.trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "") or None
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule,
                               ckpt_path="best" if best else None, weights_only=True)
    return {k: float(v) for k, v in (results[0] if results else {}).items()}


def summarise(per_split: dict[int, dict[str, float]]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "std", "split<N>"...}}`` over the metrics every split reported."""
    metrics = sorted(set.intersection(*(set(m) for m in per_split.values())))
    summary = {}
    for name in metrics:
        values = [per_split[s][name] for s in sorted(per_split)]
        summary[name] = {
            **{f"split{s}": per_split[s][name] for s in sorted(per_split)},
            "mean": statistics.fmean(values),
            "std": statistics.pstdev(values),
        }
    return summary


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="run_splits.py", description=__doc__.split("\n")[0])
    parser.add_argument("--config", action="append", required=True,
                        help="cli.py config file (repeat to layer several)")
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3],
                        choices=[1, 2, 3])
    parser.add_argument("--output", type=Path, help="write the summary as JSON here")
    args = parser.parse_args(argv)

    per_split = {split: run_split(args.config, split, extra) for split in args.splits}
    summary = summarise(per_split)
    width = max((len(name) for name in summary), default=6)
    header = " ".join(f"{'split' + str(s):>9}" for s in args.splits)
    print(f"\n{'metric':<{width}} {header} {'mean':>9} {'std':>9}")
    for name, row in summary.items():
        cells = " ".join(f"{row[f'split{s}']:9.4f}" for s in args.splits)
        print(f"{name:<{width}} {cells} {row['mean']:9.4f} {row['std']:9.4f}")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"splits": per_split, "summary": summary},
                                          indent=1))
    return summary


if __name__ == "__main__":
    main()
