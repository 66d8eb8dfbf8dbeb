"""Optical flow for the two-stream models: TV-L1 extraction, the uint8 encoding, mirroring.

The flow stream of TSN (Wang et al.), I3D and S3D (s3d §5.1: "TV-L1 … flow magnitude truncated
at [−20, 20] … stored as encoded JPEG files") reads pre-computed flow, one greyscale JPEG per
component and frame pair, in the layout MMAction2 / TSN users already have::

    <video>/flow_x_00001.jpg   flow_y_00001.jpg     frame 1 → frame 2
    <video>/flow_x_00002.jpg   flow_y_00002.jpg     frame 2 → frame 3
    ...                                              (and img_00001.jpg … when RGB is extracted too)

Encoding: a displacement ``f`` in pixels is clipped to ``[−BOUND, BOUND]`` (``BOUND = 20``) and
mapped linearly onto 0..255: ``v = floor((f + 20) · 255 / 40 + 0.5)``, so 128 is no motion,
``v > 128`` is motion to the right (x) or down (y). Flow ``k`` (0-based) is computed between the
``k``-th and ``(k+1)``-th frames of a plain sequential decode (the frame numbering of
``prepare frames`` and of every decoder), so a video of ``N`` frames has ``N − 1`` flow pairs.

Mirroring a video mirrors its motion: a flipped flow image has its x component negated, which in
the encoding is ``x' = 255 − x`` (``mirror_flow``); y is unchanged.

Extraction needs OpenCV's contrib module (``pip install finegrain-video[flow]``, i.e. the
``opencv-contrib-python-headless`` wheel); it is imported only by :func:`extract_flow`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

__all__ = [
    "BOUND",
    "FLOW_MEAN",
    "FLOW_STD",
    "TVL1Settings",
    "decode_flow",
    "encode_flow",
    "extract_flow",
    "flow_names",
    "mirror_flow",
    "tvl1",
]

#: flow is truncated at ±BOUND pixels before encoding (s3d §5.1; TSN's and MMAction2's default)
BOUND = 20.0
#: normalisation of flow images in [0, 1] units: 0.5 is no motion; 0.226 is the mean of the
#: ImageNet stds, the value TSN's released code (yjxiong/tsn-pytorch) uses for its flow stream
FLOW_MEAN = 0.5
FLOW_STD = 0.226


def encode_flow(flow: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """Float displacements ``[..., 2]`` (pixels) → ``uint8`` with 128 = no motion."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.floor(scaled + 0.5).clip(0, 255).astype(np.uint8)


def decode_flow(encoded: np.ndarray | Tensor, bound: float = BOUND) -> np.ndarray:
    """Inverse of :func:`encode_flow` (up to its 0.16 px quantisation): pixels, float32."""
    values = encoded.numpy() if isinstance(encoded, Tensor) else np.asarray(encoded)
    return values.astype(np.float32) * (2 * bound / 255.0) - bound


def mirror_flow(x: Tensor, channel_dim: int) -> Tensor:
    """Horizontally mirror flow images: flip the last (width) dim and negate x.

    ``x``: ``uint8`` flow with interleaved components along ``channel_dim`` (``x1, y1, x2, y2,
    …``: even positions are x), any layout whose last dim is the width, e.g. ``[T, C, H, W]``.
    Negating an encoded x is ``255 − x`` (:func:`encode_flow` maps ``f`` and ``−f`` to ``v`` and
    ``255 − v``).
    """
    if x.dtype != torch.uint8:
        raise ValueError(f"mirror_flow expects uint8 encoded flow, got {x.dtype}")
    if x.shape[channel_dim] % 2:
        raise ValueError(f"flow has x/y channel pairs; got {x.shape[channel_dim]} channels")
    out = x.flip(-1)
    pairs = rearrange(out.movedim(channel_dim, 0), "(l two) ... -> l two ...", two=2)
    pairs[:, 0] = 255 - pairs[:, 0]
    return rearrange(pairs, "l two ... -> (l two) ...").movedim(0, channel_dim).contiguous()


def flow_names(index: int) -> tuple[str, str]:
    """File names of flow pair number ``index`` (1-based as written): ``flow_x_00001.jpg``…"""
    return f"flow_x_{index:05d}.jpg", f"flow_y_{index:05d}.jpg"


@dataclass(frozen=True)
class TVL1Settings:
    """OpenCV ``optflow.DualTVL1OpticalFlow`` parameters (Zach et al. 2007; Pérez et al. 2013).

    The defaults are OpenCV's own (what "TV-L1" means in the papers' pipelines, which ran the
    same algorithm: OpenCV's GPU TV-L1 in TSN's ``dense_flow`` and MMAction2's ``denseflow``).
    ``TVL1Settings.fast()`` trades accuracy for speed (3 scales, 3 warps, 3 × 10 iterations):
    about 2–4× faster, for small-scale experiments (``benchmarks/flow_speed.py``).
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    scales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5

    @classmethod
    def fast(cls) -> TVL1Settings:
        return cls(scales=3, warps=3, inner_iterations=10, outer_iterations=3)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tvl1(settings: TVL1Settings | None = None) -> Any:
    """A configured ``cv2.optflow.DualTVL1OpticalFlow`` (one OpenCV thread: parallelism is over
    videos). Raises ``ImportError`` naming the extra to install when OpenCV contrib is absent."""
    try:
        import cv2

        create = cv2.optflow.DualTVL1OpticalFlow_create
    except (ImportError, AttributeError):
        raise ImportError(
            "TV-L1 flow needs OpenCV's contrib module: pip install 'finegrain-video[flow]' "
            "(the opencv-contrib-python-headless wheel)") from None
    cv2.setNumThreads(1)
    s = settings or TVL1Settings()
    return create(tau=s.tau, lambda_=s.lambda_, theta=s.theta, nscales=s.scales,
                  warps=s.warps, epsilon=s.epsilon, innnerIterations=s.inner_iterations,
                  outerIterations=s.outer_iterations, scaleStep=s.scale_step,
                  medianFiltering=s.median_filtering)


def _write_jpeg(path: Path, image: np.ndarray | Tensor, quality: int) -> None:
    from torchvision.io import encode_jpeg

    tensor = torch.from_numpy(image) if isinstance(image, np.ndarray) else image
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    path.write_bytes(encode_jpeg(tensor.contiguous(), quality=quality).numpy().tobytes())


def flow_done(target: Path, start_index: int = 1) -> bool:
    """Whether ``target`` holds a finished flow extraction: the first pair is written last."""
    return all((target / name).exists() for name in flow_names(start_index))


def extract_flow(
    source: Path,
    target: Path,
    *,
    short_side: int | None = None,
    start_index: int = 1,
    quality: int = 90,
    rgb_template: str | None = None,
    settings: TVL1Settings | None = None,
) -> int:
    """Write the TV-L1 flow of every pair of consecutive frames of ``source`` into ``target``.

    Frames are decoded sequentially (PyAV), resized to ``short_side`` (as ``prepare frames``),
    turned to grey, and each pair's flow is clipped, encoded (module docstring) and written as
    ``flow_x_<k>.jpg`` / ``flow_y_<k>.jpg`` with ``k`` counted from ``start_index``. With
    ``rgb_template`` (e.g. ``"img_{:05d}.jpg"``) the RGB frames are written too, numbered the
    same way, so flow ``k`` starts at frame ``k``.

    Written into ``<target>.flow.partial`` and moved into ``target`` when complete (the first
    pair last), so an interrupted run leaves ``target`` without a finished flow and is redone;
    RGB frames already in ``target`` (from ``prepare frames``) are kept. Returns the number of
    flow pairs.
    """
    import av
    import cv2

    from datamodules.prepare import _one_torch_thread, _resize_rgb

    solver = tvl1(settings)
    partial = target.with_name(target.name + ".flow.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    count, previous = 0, None
    with _one_torch_thread(), av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for number, frame in enumerate(container.decode(stream)):
            rgb = _resize_rgb(frame.to_ndarray(format="rgb24"), short_side)  # [3, H, W]
            if rgb_template is not None:
                _write_jpeg(partial / rgb_template.format(start_index + number), rgb, quality)
            grey = cv2.cvtColor(rgb.permute(1, 2, 0).numpy(), cv2.COLOR_RGB2GRAY)
            if previous is not None:
                flow = solver.calc(previous, grey, None)  # float32 [H, W, 2] (dx, dy)
                encoded = encode_flow(flow)
                name_x, name_y = flow_names(start_index + count)
                _write_jpeg(partial / name_x, encoded[..., 0], quality)
                _write_jpeg(partial / name_y, encoded[..., 1], quality)
                count += 1
            previous = grey
    if count == 0:
        shutil.rmtree(partial)
        raise RuntimeError(f"{source}: fewer than 2 frames decode, no flow")
    if not target.exists():
        partial.rename(target)
        return count
    first = set(flow_names(start_index))
    names = sorted(set(os.listdir(partial)) - first) + sorted(first)
    for name in names:
        os.replace(partial / name, target / name)
    partial.rmdir()
    return count
