"""What each fine-grained head adds over the backbone: parameters, FLOPs, CPU forward time.

Issue 8 / dfb §3.3 / u2s Table III. For TSN-R50 on 8×224² and I3D-R50 on 16×224², at 400
(Kinetics) and 174 (Something-Something) classes, prints per head:

* ``params`` — the head's own parameters (M) and what it adds over the GAP baseline;
* ``GMAC`` — multiply-accumulates of backbone+head minus the backbone's (``models.complexity``,
  FLOPs counted as MACs like the papers);
* ``cpu ms`` — process CPU time of the head's forward on real stage features (batch 1, one
  thread by default), the minimum over interleaved rounds, and ``cpu%``, its share of the
  backbone's, next to ``flop%``: ``cpu%`` should not exceed ``flop%`` (no wasted work). CPU time
  rather than wall time is the headline because the machine is shared: contention stretches
  wall time (also printed) but barely changes the CPU time a single-threaded forward needs.

``dfb-naive`` is the textbook DFB (concatenate, full-resolution 1×1×1 conv, max) for reference;
``DFBHead`` computes the same numbers with about half the filter-bank MACs (see its docstring).

Usage (repo root, or anywhere once the project is pip-installed):
``python -m benchmarks.head_cost [--repeats 4] [--threads 1] [--classes 400 174]``.
Default run: about 3–4 minutes on a lightly loaded CPU (the heavy heads dominate).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models import complexity, create_backbone
from models.heads import DFBHead, GAPHead, U2SHead

SETTINGS = {  # name: (preset, input shape [B, C, T, H, W])
    "TSN-R50 8x224": ("tsn_resnet50", (1, 3, 8, 224, 224)),
    "I3D-R50 16x224": ("i3d_resnet50", (1, 3, 16, 224, 224)),
}

HEADS: dict[str, Callable[[nn.Module, int], nn.Module]] = {
    "gap": lambda bb, c: GAPHead(bb, c),
    "dfb (GB+DF)": lambda bb, c: DFBHead(bb, c, local_branch=False),
    "dfb (GB+DF+LB)": lambda bb, c: DFBHead(bb, c),
    "dfb-naive": lambda bb, c: NaiveDFB(bb, c),
    "u2s": lambda bb, c: U2SHead(bb, c, stage=3),
}


class NaiveDFB(DFBHead):
    """Reference DFB: materialise cat(stage4, up(local)) and run the C·N conv at full size."""

    def filter_bank(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor, tuple[int, ...]]:
        skip = features[self.local_stage]
        grid = tuple(skip.shape[2:])
        up = F.interpolate(self.local(skip), size=grid, mode="trilinear", align_corners=False)
        volume = torch.cat([skip, up], dim=1)
        weight = self.filter_weight[:, :, None, None, None]
        responses = F.conv3d(volume, weight, self.filters_bias)
        value, index = responses.flatten(2).max(dim=2)
        return value, index, grid


class WithHead(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x)).final_logits


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(cpu_ms, wall_ms)`` of one call: process CPU time and wall-clock time."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.process_time() - cpu) * 1e3, (time.perf_counter() - wall) * 1e3


def params_m(module: nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


@torch.no_grad()
def run(setting: str, classes: list[int], repeats: int, backbone_repeats: int) -> None:
    preset, shape = SETTINGS[setting]
    torch.manual_seed(0)
    backbone = create_backbone(preset).eval()
    base = complexity(backbone, shape)
    x = torch.randn(*shape)
    features = backbone(x)  # also the warm-up
    heads: dict[tuple[int, str], nn.Module] = {}
    for num_classes in classes:
        for name, make in HEADS.items():
            head = make(backbone, num_classes).eval()
            if isinstance(head, U2SHead):
                # a CSM with ~5 positives per column, as trained (selection cost is negligible)
                head.set_csm(torch.rand(num_classes, num_classes).lt(4 / num_classes).float())
            head(features)  # warm-up (allocator, oneDNN primitive cache)
            heads[num_classes, name] = head
    # Interleaved rounds, minimum kept: the CPU is shared, and contention only ever adds time,
    # so the minimum over rounds is the least biased estimate of each forward's own cost.
    # the backbone stages the branching heads re-run (as fresh copies): their own cost
    stages = {
        "stage5": lambda: backbone.stage5(features["stage4"]),
        "stage4-5": lambda: backbone.stage5(backbone.stage4(features["stage3"])),
    }
    samples: dict[object, list[tuple[float, float]]] = {key: [] for key in [*heads, *stages]}
    samples["backbone"] = []
    for round_ in range(repeats):
        if round_ < backbone_repeats:
            samples["backbone"].append(timed(lambda: backbone(x)))
        for key, fn in stages.items():
            samples[key].append(timed(fn))
        for key, head in heads.items():
            samples[key].append(timed(lambda head=head: head(features)))
    cpu = {key: min(c for c, _ in values) for key, values in samples.items()}
    wall = {key: min(w for _, w in values) for key, values in samples.items()}
    backbone_ms = cpu["backbone"]
    dims = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in features.items() if k >= "stage4")
    print(
        f"\n## {setting} ({preset}): backbone {base['params_m']:.2f} M params, "
        f"{base['gflops']:.1f} GMAC, forward {backbone_ms:.0f} ms CPU / {wall['backbone']:.0f} ms "
        f"wall  [{dims}]"
    )
    print(
        f"{'classes':>7} {'head':<15} {'params M':>9} {'+vs gap':>8} {'GMAC':>8} "
        f"{'flop%':>6} {'cpu ms':>8} {'cpu%':>6} {'wall ms':>8}"
    )
    for num_classes in classes:
        gap_params = params_m(heads[num_classes, "gap"])
        for name in HEADS:
            head = heads[num_classes, name]
            p = params_m(head)
            gmac = complexity(WithHead(backbone, head), shape)["gflops"] - base["gflops"]
            ms = cpu[num_classes, name]
            print(
                f"{num_classes:>7} {name:<15} {p:>9.2f} {p - gap_params:>+8.2f} {gmac:>8.2f} "
                f"{100 * gmac / base['gflops']:>5.1f}% {ms:>8.1f} {100 * ms / backbone_ms:>5.1f}% "
                f"{wall[num_classes, name]:>8.1f}"
            )
    print(
        "backbone's own stages for comparison (the local branch re-runs stage5 on stage4, the "
        "U2S CSN stage4-5 on stage3): "
        + ", ".join(f"{k} {cpu[k]:.1f} ms CPU ({100 * cpu[k] / backbone_ms:.1f}%)" for k in stages)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--classes", nargs="+", type=int, default=[400, 174])
    parser.add_argument("--repeats", type=int, default=4, help="timed rounds (minimum kept)")
    parser.add_argument("--backbone-repeats", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="1: CPU time is pure compute (no spin-waits)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} CPU thread(s), batch 1, fp32, min of "
        f"{args.repeats} (heads) / {args.backbone_repeats} (backbone) interleaved forwards; "
        "cpu% = head CPU time / backbone CPU time"
    )
    for setting in args.settings:
        run(setting, args.classes, args.repeats, args.backbone_repeats)


if __name__ == "__main__":
    main()
