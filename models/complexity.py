"""Parameters and FLOPs of a model, FLOPs counted as multiply-accumulates.

The papers (S3D Tables 2–3, unified-analysis Table 2) and torchvision's model docs count one
multiply-accumulate as one FLOP; ``torch.utils.flop_counter.FlopCounterMode`` counts two, so we
halve it. Only convolutions and matrix products are counted (BN, ReLU, pooling are not), which
is the same convention.

No real arithmetic runs: the forward pass goes through ``FakeTensorMode`` (real parameters are
converted to fake tensors on the fly) or, for a model built on ``torch.device("meta")``, through
meta tensors — so counting I3D-R50 at 32×256² costs milliseconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass on an input of ``input_shape`` (batch included)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()  # BN in eval mode: no running-stat updates on fake/meta tensors
    try:
        counter = FlopCounterMode(display=False)
        if device.type == "meta":
            with counter, torch.no_grad():
                model(torch.empty(*input_shape, device="meta"))
        else:
            with FakeTensorMode(allow_non_fake_inputs=True) as mode, torch.no_grad():
                x = mode.from_tensor(torch.empty(*input_shape, device=device))
                with counter:
                    model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def complexity(model: nn.Module, input_shape: Sequence[int]) -> dict[str, float]:
    """``{"gflops": multiply-accumulates / 1e9, "params_m": parameters / 1e6}``.

    ``input_shape`` includes the batch, e.g. ``(1, 3, 32, 256, 256)``; the model may return a
    tensor or a dict of tensors (a backbone's stage dict).
    """
    return {
        "gflops": count_macs(model, input_shape) / 1e9,
        "params_m": count_params(model) / 1e6,
    }
