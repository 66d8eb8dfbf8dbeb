"""CPU forward+backward time of ``VideoResNet`` configured as R3D-18 / R(2+1)D-18 against
torchvision's ``r3d_18`` / ``r2plus1d_18`` on the same input, as ratios (target ≤ 1.05×: the
FLOPs are equal, see ``benchmarks/complexity.py``).

    python -m benchmarks.backbone_speed                       # 2×3×8×112², 3 rounds, 2 threads
    python -m benchmarks.backbone_speed --frames 16 --layouts contiguous channels_last_3d

Each round times every model once, interleaved, and a model's figure is its fastest round: on a
shared CPU contention only ever adds time, so the minimum is the least noisy estimate. Both wall
time and process CPU time are reported; on a loaded machine the CPU time is the steadier one.
The loss is a mean over the last feature map (ours: ``stage5``; torchvision: its logits, whose
avg-pool + fc cost is negligible), so both run the same convolutions forward and backward.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torchvision
from torch import Tensor, nn

from models import create_backbone


def step_fn(model: nn.Module) -> Callable[[Tensor], None]:
    def step(x: Tensor) -> None:
        out = model(x)
        loss = out["stage5"].mean() if isinstance(out, dict) else out.mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layouts", nargs="+", default=["contiguous"],
                        choices=["contiguous", "channels_last_3d"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    pairs = {
        "r3d_18": (create_backbone("r3d_18"), torchvision.models.video.r3d_18()),
        "r2plus1d_18": (create_backbone("r2plus1d_18"), torchvision.models.video.r2plus1d_18()),
    }
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    print(f"input {tuple(x.shape)}, {args.threads} threads, best of {args.rounds} rounds, "
          f"forward+backward, train mode")
    for layout in args.layouts:
        fmt = torch.channels_last_3d if layout == "channels_last_3d" else torch.contiguous_format
        xin = x.to(memory_format=fmt)
        steps: dict[str, Callable[[Tensor], None]] = {}
        for name, (ours, theirs) in pairs.items():
            steps[f"ours {name}"] = step_fn(ours.train().to(memory_format=fmt))
            steps[f"torchvision {name}"] = step_fn(theirs.train().to(memory_format=fmt))
        for step in steps.values():  # warm-up: one-off kernel selection and allocation
            step(xin)
        wall = dict.fromkeys(steps, float("inf"))
        cpu = dict.fromkeys(steps, float("inf"))
        for _ in range(args.rounds):
            for key, step in steps.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                step(xin)
                wall[key] = min(wall[key], time.perf_counter() - start)
                cpu[key] = min(cpu[key], time.process_time() - start_cpu)
        print(f"\n[{layout}]          wall: ours / torchvision = ratio    "
              f"CPU time: ours / torchvision = ratio")
        for name in pairs:
            a, b = f"ours {name}", f"torchvision {name}"
            print(f"{name:12} {wall[a]:7.3f} / {wall[b]:7.3f} s = {wall[a] / wall[b]:5.3f}×"
                  f"        {cpu[a]:7.3f} / {cpu[b]:7.3f} s = {cpu[a] / cpu[b]:5.3f}×")


if __name__ == "__main__":
    main()
