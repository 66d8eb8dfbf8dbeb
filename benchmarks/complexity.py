"""Params and GFLOPs (multiply-accumulates) of every backbone preset at the papers' input sizes,
beside the papers' figures.

    python -m benchmarks.complexity            # every preset (repo root)
    python -m benchmarks.complexity --papers   # only the rows the papers report

Models are built on ``torch.device("meta")`` and counted with ``models.complexity``: no weights
are allocated and no arithmetic runs, so the full table takes seconds on a CPU.

Reference figures:
- S3D paper Table 2 (Kinetics, 400 classes, 64×224²): I3D 12.06 M / 107.89 G, S3D 8.77 M /
  66.38 G, S3D-G 11.56 M / 71.38 G; §4.4: Fast-S3D 43.47 G.
- unified-analysis Table 2 (32×256², no temporal pooling): I3D-R50 335.3 G, TAM-R50 171.5 G,
  I3D-R101 654.7 G, TAM-R101 327.1 G.
- torchvision's model table (16×112²): r3d_18 40.70 G / 33.37 M, r2plus1d_18 40.52 G / 31.51 M.
Inception rows add a 400-way classifier (1024·400 + 400 params) as the S3D paper's counts include
the logits layer; ResNet rows are the backbone alone. Which block structure and counting rule
come closest to Table 2: ``python -m benchmarks.s3d_structure_search``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
import torchvision

from benchmarks.s3d_structure_search import COUNTINGS, TABLE_2, joint_search
from models import complexity, create_backbone, list_backbones
from models.registry import backbone_defaults

KINETICS_HEAD_PARAMS = 1024 * 400 + 400  # the S3D paper's logits layer, for Inception rows


@dataclass(frozen=True)
class Row:
    label: str
    preset: str | None  # None: a torchvision model
    shape: tuple[int, ...]
    paper_params_m: float | None = None
    paper_gflops: float | None = None
    overrides: tuple[tuple[str, object], ...] = ()


PAPER_ROWS: list[Row] = [
    Row("I3D (S3D Tab. 2)", "i3d_inception", (1, 3, 64, 224, 224), *TABLE_2["I3D"]),
    Row("S3D (S3D Tab. 2)", "s3d_inception", (1, 3, 64, 224, 224), *TABLE_2["S3D"]),
    Row("S3D-G (S3D Tab. 2)", "s3d_g_inception", (1, 3, 64, 224, 224), *TABLE_2["S3D-G"]),
    Row("S3D, 3×3-branch-only temporal", "s3d_inception", (1, 3, 64, 224, 224),
        *TABLE_2["S3D"], (("s3d_all_branches", False),)),
    Row("S3D-G, 3×3-branch-only temporal", "s3d_g_inception", (1, 3, 64, 224, 224),
        *TABLE_2["S3D-G"], (("s3d_all_branches", False),)),
    Row("S3D-G, released nets/s3dg.py", "s3d_g_inception", (1, 3, 64, 224, 224),
        *TABLE_2["S3D-G"], (("s3d_all_branches", False), ("stem", "3d"),
                            ("stem_temporal_kernel", 3), ("gate_bias", False))),
    Row("Fast-S3D (S3D §4.4)", "fast_s3d_inception", (1, 3, 64, 224, 224), None, 43.47),
    Row("I3D-R50 (unified Tab. 2)", "i3d_resnet50", (1, 3, 32, 256, 256), None, 335.3),
    Row("TAM-R50 (unified Tab. 2)", "tam_resnet50", (1, 3, 32, 256, 256), None, 171.5),
    Row("I3D-R101 (unified Tab. 2)", "i3d_resnet101", (1, 3, 32, 256, 256), None, 654.7),
    Row("TAM-R101 (unified Tab. 2)", "tam_resnet101", (1, 3, 32, 256, 256), None, 327.1),
    Row("torchvision r3d_18", None, (1, 3, 16, 112, 112), 33.37, 40.70),
    Row("ours r3d_18 (+fc 400)", "r3d_18", (1, 3, 16, 112, 112), 33.37, 40.70),
    Row("torchvision r2plus1d_18", None, (1, 3, 16, 112, 112), 31.51, 40.52),
    Row("ours r2plus1d_18 (+fc 400)", "r2plus1d_18", (1, 3, 16, 112, 112), 31.51, 40.52),
]


def input_shape(preset: str) -> tuple[int, ...]:
    """The input size the preset's paper reports at."""
    if preset.endswith("_inception"):
        return (1, 3, 64, 224, 224)  # S3D paper
    if preset.startswith("dfb_"):
        return (1, 3, 32, 224, 224)  # dfb paper §4.2: 32-frame I3D at 224²
    if preset in ("r3d_18", "r2plus1d_18"):
        return (1, 3, 16, 112, 112)  # torchvision's table
    return (1, 3, 32, 256, 256)  # unified-analysis Table 2


def measure(row: Row) -> dict[str, float]:
    with torch.device("meta"):
        if row.preset is None:
            name = row.label.split()[-1]
            net = getattr(torchvision.models.video, name)()
        else:
            net = create_backbone(row.preset, **dict(row.overrides))
    result = complexity(net, row.shape)
    if row.preset is not None and row.preset.endswith("_inception"):
        result["params_m"] += KINETICS_HEAD_PARAMS / 1e6
    if row.preset in ("r3d_18", "r2plus1d_18"):
        result["params_m"] += (512 * 400 + 400) / 1e6  # torchvision's count includes its fc
    return result


def fmt_delta(ours: float, paper: float | None) -> str:
    if paper is None:
        return "    —"
    return f"{100 * (ours - paper) / paper:+6.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", action="store_true", help="only the papers' rows")
    args = parser.parse_args()

    print("== papers' figures ==")
    print(f"{'model':34} {'input':>12} {'params M':>9} {'paper':>7} {'Δ':>7}"
          f" {'GFLOPs':>8} {'paper':>8} {'Δ':>7}")
    for row in PAPER_ROWS:
        r = measure(row)
        size = "×".join(str(s) for s in row.shape[2:])
        paper_p = f"{row.paper_params_m:7.2f}" if row.paper_params_m else "      —"
        paper_g = f"{row.paper_gflops:8.2f}" if row.paper_gflops else "       —"
        print(f"{row.label:34} {size:>12} {r['params_m']:9.2f} {paper_p} "
              f"{fmt_delta(r['params_m'], row.paper_params_m)} {r['gflops']:8.2f} {paper_g} "
              f"{fmt_delta(r['gflops'], row.paper_gflops)}")
    joint = min((joint_search(c, strict=False) for c in COUNTINGS), key=lambda j: j.worst)
    print(f"S3D Table 2, best block structures over the searched space: worst row "
          f"{100 * joint.worst:.1f}% off [{joint.counting.describe()}]\n"
          f"  (python -m benchmarks.s3d_structure_search lists them)")
    if args.papers:
        return

    print("\n== every preset (backbone only, no classifier) ==")
    print(f"{'preset':24} {'input':>12} {'params M':>9} {'GFLOPs':>9}  options")
    for name in list_backbones():
        shape = input_shape(name)
        with torch.device("meta"):
            net = create_backbone(name)
        r = complexity(net, shape)
        size = "×".join(str(s) for s in shape[2:])
        options = ", ".join(f"{k}={v}" for k, v in backbone_defaults(name).items())
        print(f"{name:24} {size:>12} {r['params_m']:9.2f} {r['gflops']:9.2f}  {options}")


if __name__ == "__main__":
    main()
