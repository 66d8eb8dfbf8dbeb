"""``python cli.py analyze <command>``: the analyses that compare finished runs.

- ``contribution --model A --baseline TSN [--metric KEY]`` — Φ and Ψ (unified-analysis eq. 1)
  from two result files (``*_metrics.json``, CSVLogger ``metrics.csv`` or predictions files);
  several ``--model/--baseline`` pairs also give the averages Φ̄, Ψ̄ (Table 7).
- ``confusion PREDICTIONS [--groups FILE [--baseline FILE]] [--top N] [--out DIR]`` —
  most-confused pairs, per-class and per-group accuracy (with ``--baseline``: and its gain over
  the baseline, dfb Table 2), confusion-matrix PNG, from one predictions file.
- ``compare BASELINE MODEL [--groups FILE] [--top N] [--out DIR]`` — two models on the same
  test set: pairs confused less / more with both counts (dfb Table 3), per-group improvement
  (dfb Table 2), both confusion matrices side by side (dfb Fig. 3).
- ``weight-similarity --without CKPT --with CKPT [--out PNG]`` — U2S mask-network weight
  similarity without / with category regularisation and their histogram (u2s Fig. 7).
- ``fuse RGB_PRED FLOW_PRED [--weights 1 1.5] [--out DIR] [--save FILE]`` — late fusion of
  two (or more) streams' prediction files by video (weighted mean of softmax): each stream's and
  the fused top-1 / top-5 / mean class accuracy, per-class accuracy as CSV, optionally the fused
  predictions as a file the other commands read (``fusion``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from lightning_modules.analysis.confusion import (
    compare_confusions,
    compare_group_accuracy,
    confusion_matrix,
    load_class_groups,
    most_confused_pairs,
    per_class_accuracy,
    per_group_accuracy,
)
from lightning_modules.analysis.contribution import (
    DEFAULT_METRIC,
    average_contribution,
    contribution_from_files,
)
from lightning_modules.analysis.fusion import accuracy_table, align, fuse
from lightning_modules.analysis.predictions import load_predictions, save_predictions
from models.heads.u2s import weight_similarity


def _matrix(predictions: dict, rows: Tensor | None = None) -> Tensor:
    probs = predictions["probs"][predictions["final"]]
    labels = predictions["labels"]
    if rows is not None:
        probs, labels = probs[rows], labels[rows]
    return confusion_matrix(probs.argmax(-1), labels, probs.shape[1])


def mask_weight_similarity(checkpoint: str | Path) -> Tensor:
    """``S^w`` (u2s eq. 4) from a checkpoint's U2S mask-network weight, without building the
    model: the clamped cosine similarity of the rows of ``*mask_conv.weight``
    (:func:`models.heads.u2s.weight_similarity`, the head's default)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    keys = [k for k in state if k.endswith("mask_conv.weight")]
    if not keys:
        raise KeyError(f"{checkpoint} has no U2S mask network weight (*mask_conv.weight)")
    return weight_similarity(state[keys[0]].float().flatten(1))


def _out_dir(out: str | None, result_file: str, name: str) -> Path:
    """``--out``, or by default a folder beside the result file (the run's analysis folder),
    never the working directory."""
    return Path(out) if out else Path(result_file).resolve().parent / name


def _class_names(checkpoint: str) -> list[str] | None:
    """The class names a Finegrain checkpoint's hyper-parameters carry (``None`` if absent)."""
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=True).get(
        "hyper_parameters", {})
    names = hparams.get("class_names")
    return list(names) if names else None


def _label(path: str) -> str:
    """A short name for a result file: ``runs/sweep/tsn/seed0/analysis/test_predictions.pt``
    → ``tsn/seed0`` (the callbacks' file names are the same in every run)."""
    parts = [p for p in Path(path).with_suffix("").parts if p not in ("analysis", ".")]
    if parts and parts[-1] in ("test_predictions", "predictions"):
        parts = parts[:-1]
    return "/".join(parts[-2:]) or Path(path).stem


def _contribution(args: argparse.Namespace) -> int:
    if len(args.model) != len(args.baseline):
        raise SystemExit("give one --baseline per --model")
    rows = [contribution_from_files(m, b, args.metric)
            for m, b in zip(args.model, args.baseline, strict=True)]
    for model, row in zip(args.model, rows, strict=True):
        print(f"{model}: S_a={row['S_a']:.2f} S_TSN={row['S_TSN']:.2f} "
              f"phi={row['phi']:.3f} psi={row['psi']:.3f}")
    summary: dict = {"pairs": rows}
    if len(rows) > 1:
        phi, psi = average_contribution((r["S_a"], r["S_TSN"]) for r in rows)
        summary.update(phi_mean=phi, psi_mean=psi)
        print(f"average: phi={phi:.3f} psi={psi:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


def _confusion(args: argparse.Namespace) -> int:
    from lightning_modules.analysis.figures import confusion_figure
    from lightning_modules.analysis.report import write_image, write_table

    if args.baseline and not args.groups:  # before anything is written
        raise SystemExit("--baseline compares per-group accuracy: give --groups too")
    predictions = load_predictions(args.predictions)
    names = predictions["class_names"]
    matrix = _matrix(predictions)
    out = _out_dir(args.out, args.predictions, "confusion")
    pairs = most_confused_pairs(matrix, names, args.top)
    print("most-confused pairs (true -> predicted: videos):")
    for p in pairs:
        print(f"  {p.true} -> {p.predicted}: {p.count}/{p.of}")
    # the same columns as the ConfusionAnalysis callback's tables
    write_table(out / "most_confused_pairs.csv", ["true", "predicted", "videos", "of", "rate"],
                [[p.true, p.predicted, p.count, p.of, p.rate] for p in pairs])
    write_table(out / "per_class_accuracy.csv", ["class", "accuracy", "videos"],
                list(zip(names, per_class_accuracy(matrix).tolist(), matrix.sum(1).tolist(),
                         strict=True)))
    if args.groups:
        groups = per_group_accuracy(matrix, names, load_class_groups(args.groups))
        write_table(out / "per_group_accuracy.csv", ["group", "accuracy"], list(groups.items()))
        if args.baseline:
            base_matrix, matrix_aligned, _ = _aligned_matrices(args.baseline, args.predictions)
            _group_gains(base_matrix, matrix_aligned, names, args.groups, out)
        else:
            print("per-group top-1 (mean of the group's class accuracies):")
            for group, value in groups.items():
                print(f"  {group}: {100 * value:.1f}")
    title = f"confusion matrix: {_label(args.predictions)}"
    write_image(out / "confusion.png", confusion_figure(matrix, names, title=title))
    print(f"written to {out}")
    return 0


def _aligned_matrices(baseline: str, model: str) -> tuple[Tensor, Tensor, list[str]]:
    """Confusion matrices of two predictions files over the same test split, the baseline's
    rows aligned to the model's videos by video id (the files may list them in any order)."""
    base, ours = load_predictions(baseline), load_predictions(model)
    try:  # matched as fusion matches two streams (the same ids, labels and classes)
        _, rows = align([ours, base], ["the model", "the baseline"])
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return _matrix(base, rows), _matrix(ours), list(ours["class_names"])


def _group_gains(base_matrix: Tensor, model_matrix: Tensor, names: list[str], groups_file: str,
                 out: Path) -> None:
    """dfb Table 2: per-group accuracy of baseline and model and the gain, printed and
    written to ``out/group_accuracy.csv`` (largest gain first)."""
    from lightning_modules.analysis.report import write_table

    table = compare_group_accuracy(base_matrix, model_matrix, names,
                                   load_class_groups(groups_file))
    print("per-group top-1 (baseline -> model, gain; mean of the group's class accuracies):")
    for group, before, after, gain in table:
        print(f"  {group}: {100 * before:.1f} -> {100 * after:.1f} ({100 * gain:+.1f})")
    write_table(out / "group_accuracy.csv", ["group", "baseline", "model", "improvement"], table)


def _compare(args: argparse.Namespace) -> int:
    from lightning_modules.analysis.figures import compare_confusion_figure
    from lightning_modules.analysis.report import write_image, write_table

    base_matrix, model_matrix, names = _aligned_matrices(args.baseline, args.model)
    out = _out_dir(args.out, args.model, "compare")
    comparison = compare_confusions(base_matrix, model_matrix, names, args.top)
    for kind in ("improved", "worsened"):
        print(f"pairs {kind} (true -> predicted: baseline / model):")
        for r in comparison[kind]:
            print(f"  {r.true} -> {r.predicted}: {r.baseline} / {r.model}")
        write_table(out / f"pairs_{kind}.csv", ["true", "predicted", "baseline", "model",
                                                "change"],
                    [[r.true, r.predicted, r.baseline, r.model, r.change]
                     for r in comparison[kind]])
    if args.groups:
        _group_gains(base_matrix, model_matrix, names, args.groups, out)
    titles = tuple(args.names) if args.names else (_label(args.baseline), _label(args.model))
    write_image(out / "confusion_compare.png",
                compare_confusion_figure(base_matrix, model_matrix, names, titles))
    print(f"written to {out}")
    return 0


def _weight_similarity(args: argparse.Namespace) -> int:
    from lightning_modules.analysis.figures import similarity_figure
    from lightning_modules.analysis.report import write_image

    matrices = {"without category regularisation": mask_weight_similarity(args.without),
                "with category regularisation": mask_weight_similarity(args.with_)}
    for name, matrix in matrices.items():
        off = matrix[~torch.eye(matrix.shape[0], dtype=torch.bool)]
        print(f"{name}: mean off-diagonal S^w = {float(off.mean()):.3f}")
    names = _class_names(args.with_)
    out = Path(args.out) if args.out else Path(args.with_).parent / "weight_similarity.png"
    path = write_image(out, similarity_figure(matrices, names))
    print(f"written to {path}")
    return 0


def _fuse(args: argparse.Namespace) -> int:
    from lightning_modules.analysis.report import write_table

    names = list(args.names) if args.names else [_label(p) for p in args.predictions]
    if len(set(names)) != len(names):
        names = [f"{n} ({i})" for i, n in enumerate(names)]
    try:
        fused = fuse([load_predictions(p) for p in args.predictions], args.weights, names)
    except ValueError as error:
        raise SystemExit(f"analyze fuse: {error}") from None
    weights = args.weights or [1.0] * len(names)
    print(f"fusion of {len(fused['video_ids'])} videos, weights "
          + ", ".join(f"{n} {w:g}" for n, w in zip(names, weights, strict=True)))
    print(f"{'stream':<40} {'top-1':>7} {'top-5':>7} {'mean class':>10}")
    tables = {}
    for branch in [*names, "fused"]:
        tables[branch] = table = accuracy_table(fused["probs"][branch], fused["labels"])
        print(f"{branch:<40} {100 * table['acc1']:7.2f} {100 * table['acc5']:7.2f} "
              f"{100 * table['mean_class_acc']:10.2f}")
    out = Path(args.out)
    write_table(out / "fusion_accuracy.csv", ["stream", "acc1", "acc5", "mean_class_acc"],
                [[b, t["acc1"], t["acc5"], t["mean_class_acc"]] for b, t in tables.items()])
    write_table(out / "fusion_per_class_accuracy.csv", ["class", *tables],
                [[name, *(float(t["per_class"][i]) for t in tables.values())]
                 for i, name in enumerate(fused["class_names"])])
    if args.save:
        metrics = {f"test/acc1_video_{b}": t["acc1"] for b, t in tables.items()}
        save_predictions(args.save, **fused, metrics=metrics)
        print(f"fused predictions: {args.save}")
    print(f"written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py analyze", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("contribution", help="spatial/temporal contribution (Φ, Ψ)")
    p.add_argument("--model", action="append", required=True, help="model result file")
    p.add_argument("--baseline", action="append", required=True, help="TSN result file")
    p.add_argument("--metric", default=DEFAULT_METRIC)
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.set_defaults(run=_contribution)
    p = sub.add_parser("confusion", help="confusion analysis of one predictions file")
    p.add_argument("predictions")
    p.add_argument("--groups", help="class→group map (JSON or CSV class,group), e.g. "
                   "Kinetics' parent classes")
    p.add_argument("--baseline", help="a baseline's predictions file on the same test set: "
                   "also the per-group gain over it (dfb Table 2)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--out", help="folder for PNG/CSV (default: confusion/ beside the file)")
    p.set_defaults(run=_confusion)
    p = sub.add_parser("compare", help="baseline vs model confusions")
    p.add_argument("baseline")
    p.add_argument("model")
    p.add_argument("--groups")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--out", help="folder for PNG/CSV (default: compare/ beside the model file)")
    p.add_argument("--names", nargs=2, metavar=("BASELINE", "MODEL"), help="figure titles")
    p.set_defaults(run=_compare)
    p = sub.add_parser("weight-similarity", help="U2S S^w without / with regularisation")
    p.add_argument("--without", required=True, help="checkpoint trained with reg_weight=0")
    p.add_argument("--with", dest="with_", required=True, help="checkpoint with regularisation")
    p.add_argument("--out", help="PNG (default: weight_similarity.png beside --with)")
    p.set_defaults(run=_weight_similarity)
    p = sub.add_parser("fuse", help="late fusion of two-stream predictions (mean of softmax)")
    p.add_argument("predictions", nargs="+", help="prediction files: RGB, flow, …")
    p.add_argument("--weights", nargs="+", type=float, help="one per file (default: equal; "
                   "TSN: 1 1.5 for RGB, flow)")
    p.add_argument("--names", nargs="+", help="stream names in the tables")
    p.add_argument("--out", default="analysis")
    p.add_argument("--save", help="also write the fused predictions (.pt or .npz)")
    p.set_defaults(run=_fuse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return int(args.run(args))


__all__ = ["build_parser", "main", "mask_weight_similarity"]
