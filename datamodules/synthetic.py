"""A synthetic fine-grained benchmark written as real encoded videos (PyAV, libx264).

Every class is ``<context>-mark_<top|bottom>-<grow|shrink>``: a square of random colour crosses
the frame in front of a textured background while it grows (or shrinks), carrying a small mark
on its top (or bottom) edge.

- **local-detail pairs** differ only in where the small mark sits (``mark_top`` vs
  ``mark_bottom``): fine spatial detail decides.
- **time-reversed pairs** differ only in ``grow`` vs ``shrink``; a ``shrink`` video is exactly a
  ``grow`` video played backwards, so both show the same set of frames and only temporal order
  separates them (a 2D model with average consensus cannot, the s3d paper's Table 1 argument).
- **coarse-context groups**: the background texture (``stripes``, ``checker``, ...) is shared by
  the four classes of a group and differs between groups.

Flips keep every label (marks are on the top/bottom edge, the crossing direction is random), so
the usual horizontal-flip augmentation is safe.

With ``video_backend="flow"`` the datamodule also computes the videos' TV-L1 flow once
(``datamodules.flow``, fast settings) and serves the flow stream: the growing or shrinking of
the square is in the flow's divergence, so a 2D model on flow can tell the time-reversed pairs
apart, while the mark (it moves with the square) is nearly invisible in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal

import av
import numpy as np
from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    restricted_number_type,
)
from pytorch_lightning.utilities import rank_zero_info

from datamodules.base import Split, VideoDataModule
from datamodules.dataset import OnError
from datamodules.normalize import IMAGENET, Normalization
from datamodules.predict import PredictPaths
from datamodules.records import VideoRecord
from datamodules.transforms import ClipTransform, ClipViews

CONTEXTS = ("stripes", "checker", "gradient", "rings")
MARKS = ("top", "bottom")
MOTIONS = ("grow", "shrink")
_SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
# checked when a config is parsed (the constructor checks it again for Python callers)
MarkContrast = restricted_number_type("MarkContrast", float, [(">", 0), ("<=", 1)])


def synthetic_class_names(num_contexts: int, first_context: int = 0) -> list[str]:
    """All class names, context-major: ``[ctx-mark_top-grow, ctx-mark_top-shrink, ...]``, for
    the contexts ``CONTEXTS[first_context : first_context + num_contexts]``."""
    return [
        f"{context}-mark_{mark}-{motion}"
        for context in CONTEXTS[first_context:first_context + num_contexts]
        for mark in MARKS
        for motion in MOTIONS
    ]


def _background(context: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """``float32 [size, size, 3]`` in 0..255: one texture per context, jittered per video."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    if context == "stripes":
        pattern = np.sin(yy * 2 * np.pi / rng.uniform(6, 10) + phase)
        base, accent = np.array([30, 40, 110]), np.array([60, 90, 170])
    elif context == "checker":
        cell = rng.integers(6, 10)
        row, col = (yy + rng.integers(cell)) // cell, (xx + rng.integers(cell)) // cell
        pattern = ((row + col) % 2) * 2 - 1
        base, accent = np.array([30, 100, 40]), np.array([70, 150, 80])
    elif context == "gradient":
        angle = rng.uniform(0, np.pi)
        pattern = ((xx * np.cos(angle) + yy * np.sin(angle)) / size) * 2 - 1
        base, accent = np.array([120, 50, 30]), np.array([180, 110, 60])
    else:  # rings
        cy, cx = rng.uniform(0, size, 2)
        pattern = np.sin(np.hypot(yy - cy, xx - cx) * 2 * np.pi / rng.uniform(7, 11) + phase)
        base, accent = np.array([100, 90, 100]), np.array([150, 140, 150])
    mix = (pattern[..., None] + 1) / 2
    return (base * (1 - mix) + accent * mix).astype(np.float32) + rng.normal(0, 6, 3)


def render_video(
    class_name: str,
    rng: np.random.Generator,
    *,
    size: int = 64,
    num_frames: int = 16,
    noise: float = 12.0,
    mark_contrast: float = 1.0,
) -> np.ndarray:
    """Draw one video of ``class_name``: ``uint8 [T, size, size, 3]``.

    ``mark_contrast`` in (0, 1] blends the mark's colour towards the square's: 1 (default) draws
    the plain black/white mark, smaller values make the local detail fainter (harder).
    """
    context, mark, motion = class_name.split("-")
    mark = mark.removeprefix("mark_")
    if context not in CONTEXTS or mark not in MARKS or motion not in MOTIONS:
        raise ValueError(f"not a synthetic class name: {class_name!r}")
    background = _background(context, size, rng)
    colour = rng.uniform(150, 255, 3) * rng.permutation([1.0, 0.7, 0.3])
    mark_colour = np.zeros(3) if colour.mean() > 110 else np.full(3, 255.0)
    if mark_contrast != 1.0:
        mark_colour = colour + mark_contrast * (mark_colour - colour)
    # the "grow" trajectory; "shrink" plays the very same frames backwards
    t = np.linspace(0, 1, num_frames)
    side = size * (rng.uniform(0.16, 0.22) + rng.uniform(0.14, 0.2) * t)
    direction = rng.choice([-1, 1])
    cx = size / 2 + direction * size * rng.uniform(0.15, 0.25) * (2 * t - 1)
    cy = size / 2 + rng.uniform(-0.12, 0.12) * size + rng.uniform(-0.05, 0.05) * size * t
    frames = np.empty((num_frames, size, size, 3), np.float32)
    for i in range(num_frames):
        frame = background.copy()
        half = side[i] / 2
        top, bottom = int(round(cy[i] - half)), int(round(cy[i] + half))
        left, right = int(round(cx[i] - half)), int(round(cx[i] + half))
        frame[max(top, 0) : bottom, max(left, 0) : right] = colour
        mark_h = max(3, int(round(side[i] * 0.28)))
        mark_w = max(3, int(round(side[i] * 0.4)))
        mark_x = int(round(cx[i] - mark_w / 2))
        mark_y = top if mark == "top" else bottom - mark_h
        frame[max(mark_y, 0) : mark_y + mark_h, max(mark_x, 0) : mark_x + mark_w] = mark_colour
        frames[i] = frame
    if motion == "shrink":
        frames = frames[::-1]
    frames += rng.normal(0, noise, frames.shape).astype(np.float32)
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 12) -> None:
    """Encode ``uint8 [T, H, W, 3]`` as H.264 (yuv420p) with PyAV, reproducibly.

    Constant quantiser, one encoder thread and explicit timestamps: with rate control, threads
    or missing pts, x264's output differs from run to run.
    """
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "16", "preset": "veryfast", "threads": "1"}
        stream.codec_context.thread_count = 1
        for pts, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")
            frame.pts = pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def generate_benchmark(
    root: str | os.PathLike,
    *,
    seed: int,
    num_contexts: int,
    videos_per_class: dict[str, int],
    size: int,
    frames_per_video: int,
    noise: float,
    mark_contrast: float = 1.0,
    first_context: int = 0,
) -> Path:
    """Write every split's videos and a ``manifest.json`` under ``root``; return ``root``.

    Written to a temporary folder first and renamed into place, so an interrupted run never
    leaves a half-written benchmark behind and concurrent processes do not collide. Progress is
    reported every tenth of the videos (a first run writes hundreds of files).
    """
    root = Path(root)
    if (root / "manifest.json").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=root.parent))
    classes = synthetic_class_names(num_contexts, first_context)
    manifest: dict[str, object] = {"classes": classes, "splits": {}}
    total = len(classes) * sum(videos_per_class.values())
    every, written, start = max(1, total // 10), 0, time.perf_counter()
    rank_zero_info(f"synthetic benchmark: writing {total} videos to {root} (once; later runs "
                   "read them back)")
    for split, count in videos_per_class.items():
        entries = []
        for label, name in enumerate(classes):
            (staging / split / name).mkdir(parents=True)
            for i in range(count):
                rng = np.random.default_rng([seed, _SPLIT_SEEDS[split], label, i])
                frames = render_video(name, rng, size=size, num_frames=frames_per_video,
                                      noise=noise, mark_contrast=mark_contrast)
                relative = f"{split}/{name}/{split}_{label:02d}_{i:04d}.mp4"
                write_video(staging / relative, frames)
                entries.append({"path": relative, "label": label, "num_frames": frames_per_video})
                written += 1
                if written % every == 0 or written == total:
                    rank_zero_info(f"synthetic benchmark: {written}/{total} videos "
                                   f"({time.perf_counter() - start:.0f} s)")
        manifest["splits"][split] = entries
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    try:
        staging.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return root


class SyntheticFineGrainedDataModule(VideoDataModule):
    """The synthetic fine-grained benchmark (module docstring) as a LightningDataModule.

    Videos are generated once into ``data_dir/<parameter hash>/`` (``prepare_data``), then read
    through the same decoder, sampler and transforms as real data.

    Args:
        data_dir: cache folder for the generated videos.
        seed: everything generated is a function of this seed and the parameters below.
        num_contexts: background groups (1–4); classes = 4 × num_contexts.
        train_per_class / val_per_class / test_per_class: videos per class and split.
        size: frame side in pixels; frames_per_video: length of every video.
        noise: std of per-pixel Gaussian noise (0–255 scale): the difficulty knob.
        mark_contrast: in (0, 1]; below 1 the local-detail mark is blended towards the square's
            colour, making the local-detail pairs harder (1: the original benchmark).
        first_context: the first of the ``CONTEXTS`` used (0: stripes), so that two benchmarks
            can share the fine-grained distinctions but not the contexts (a transfer experiment:
            pretrain on stripes + checker, fine-tune on gradient + rings with ``first_context=2``).
        video_backend: ``"pyav"`` (the encoded videos), ``"torchcodec"``, or ``"flow"``: the
            videos' TV-L1 flow (``TVL1Settings.fast()``, at the generated size), computed once
            into ``<cache>/flow-fast/`` with ``max(1, num_workers)`` processes.
        flow_length: flow pairs per sampled frame (``VideoDataModule``).
    """

    def __init__(
        self,
        data_dir: str = "~/.cache/finegrain/synthetic",
        seed: int = 0,
        num_contexts: Literal[1, 2, 3, 4] = 2,
        train_per_class: PositiveInt = 24,
        val_per_class: PositiveInt = 8,
        test_per_class: PositiveInt = 8,
        size: PositiveInt = 64,
        frames_per_video: PositiveInt = 16,
        noise: NonNegativeFloat = 12.0,
        sampling: Literal["uniform", "dense"] = "uniform",
        num_frames: PositiveInt = 8,
        frame_interval: PositiveInt = 1,
        test_clips: PositiveInt = 1,
        test_crops: Literal[1, 3, 5, 10] = 1,
        train_crop_size: PositiveInt = 32,
        test_crop_size: PositiveInt = 32,
        short_side: PositiveInt | None = 36,
        train_scale: tuple[ClosedUnitInterval, ClosedUnitInterval] = (0.5, 1.0),
        flip: bool = True,
        train_transform: ClipTransform | None = None,
        test_views: ClipViews | None = None,
        batch_size: PositiveInt = 16,
        num_workers: NonNegativeInt = 0,
        video_backend: Literal["pyav", "torchcodec", "flow"] = "pyav",
        on_error: OnError = "warn",
        mark_contrast: MarkContrast = 1.0,
        first_context: int = 0,
        flow_length: int | None = None,
        normalize: Normalization | None = IMAGENET,
        predict_paths: PredictPaths | None = None,
    ) -> None:
        super().__init__(
            data_dir=data_dir,
            sampling=sampling,
            num_frames=num_frames,
            frame_interval=frame_interval,
            test_clips=test_clips,
            test_crops=test_crops,
            train_crop_size=train_crop_size,
            test_crop_size=test_crop_size,
            short_side=short_side,
            train_scale=train_scale,
            flip=flip,
            train_transform=train_transform,
            test_views=test_views,
            batch_size=batch_size,
            num_workers=num_workers,
            video_backend=video_backend,
            on_error=on_error,
            flow_length=flow_length,
            normalize=normalize,
            predict_paths=predict_paths,
        )
        if video_backend == "frames":
            raise ValueError("the synthetic benchmark is encoded video: use video_backend "
                             "'pyav', 'torchcodec' or 'flow'")
        if not 1 <= num_contexts <= len(CONTEXTS) - first_context or first_context < 0:
            raise ValueError(
                f"first_context + num_contexts must be in 1..{len(CONTEXTS)} (first_context >= "
                f"0), got {first_context} + {num_contexts}")
        if not 0.0 < mark_contrast <= 1.0:
            raise ValueError(f"mark_contrast must be in (0, 1], got {mark_contrast}")
        self.generation = {
            "seed": seed,
            "num_contexts": num_contexts,
            "videos_per_class": {"train": train_per_class, "val": val_per_class,
                                 "test": test_per_class},
            "size": size,
            "frames_per_video": frames_per_video,
            "noise": noise,
        }
        if mark_contrast != 1.0:  # only then: the cache key of every existing setting stays
            self.generation["mark_contrast"] = mark_contrast
        if first_context:  # likewise
            self.generation["first_context"] = first_context
        key = hashlib.sha1(json.dumps(self.generation, sort_keys=True).encode()).hexdigest()[:10]
        self.root = Path(self.data_dir) / f"synthetic-{key}"

    @property
    def classes(self) -> list[str]:
        return synthetic_class_names(self.generation["num_contexts"],
                                     self.generation.get("first_context", 0))

    @property
    def class_groups(self) -> dict[str, list[str]]:
        """Groups of confusable classes, for per-group accuracy.

        ``context:<name>`` (coarse groups of 4), ``detail:<context>-<motion>`` (local-detail
        pairs) and ``reversal:<context>-mark_<mark>`` (time-reversed pairs).
        """
        groups: dict[str, list[str]] = {}
        for name in self.classes:
            context, mark, motion = name.split("-")
            groups.setdefault(f"context:{context}", []).append(name)
            groups.setdefault(f"detail:{context}-{motion}", []).append(name)
            groups.setdefault(f"reversal:{context}-{mark}", []).append(name)
        return groups

    @property
    def data_root(self) -> str:
        """The generated benchmark's folder (``data_dir/synthetic-<hash>``)."""
        return str(self.root)

    @property
    def flow_root(self) -> Path:
        """Where the flow folders of the generated videos go (``video_backend="flow"``)."""
        return self.root / "flow-fast"

    def video_root(self, split: str) -> str:
        """:meth:`VideoDataModule.video_root`; for flow, the flow folder, whose layout mirrors
        the videos': result files then name a video as the RGB run's do (late fusion matches
        the two streams by that name)."""
        root = super().video_root(split)
        return str(self.flow_root) if self.flow and root == self.data_root else root

    def prepare_data(self) -> None:
        generate_benchmark(self.root, **self.generation)
        if self.flow and not self.flow_root.exists():
            _extract_benchmark_flow(self.root, self.flow_root, max(1, self.num_workers))

    def build_records(self, split: Split) -> list[VideoRecord]:
        self.prepare_data()  # a no-op once written; makes the module usable without a Trainer
        manifest = json.loads((self.root / "manifest.json").read_text())
        if self.flow:  # stacks of flow_length pairs; a video of N frames has N - 1 pairs
            return [
                VideoRecord(path=str(self.flow_root / Path(entry["path"]).with_suffix("")),
                            label=entry["label"],
                            num_frames=entry["num_frames"] - self.flow_length)
                for entry in manifest["splits"][split]
            ]
        return [
            VideoRecord(path=str(self.root / entry["path"]), label=entry["label"],
                        num_frames=entry["num_frames"])
            for entry in manifest["splits"][split]
        ]


def _extract_benchmark_flow(root: Path, flow_root: Path, workers: int) -> None:
    """TV-L1 flow of every video under ``root`` into ``flow_root`` (same layout), built in a
    staging folder and renamed into place, so concurrent runs never see half of it."""
    from datamodules.flow import TVL1Settings, tvl1
    from datamodules.prepare import find_videos, plan, prepare

    tvl1()  # the install hint, before any work, when OpenCV contrib is missing
    staging = Path(tempfile.mkdtemp(prefix=".flow-", dir=root))
    try:
        jobs = plan(root, staging, "flow", find_videos(root, (".mp4",)))
        _, _, failures = prepare(jobs, "flow", {"settings": TVL1Settings.fast()},
                                 workers=workers, progress=True)
        if failures:
            raise RuntimeError(f"flow extraction failed for {len(failures)} synthetic videos, "
                               f"first: {failures[0][0].source}: {failures[0][1]}")
        staging.rename(flow_root)
    except OSError:
        if not flow_root.exists():  # not "another process finished first"
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
