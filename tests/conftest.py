"""Shared fixtures: W&B kept offline inside a temporary folder, a tiny synthetic benchmark."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

# Test models are tiny: one intra-op thread avoids thread-pool stalls on a shared 2-core
# machine (a descheduled worker thread can stretch a 50 ms step to seconds).
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _offline_wandb(tmp_path_factory: pytest.TempPathFactory) -> None:
    # WandbLogger ignores WANDB_DIR; wandb itself writes under ~/.cache unless told otherwise
    root = tmp_path_factory.mktemp("wandb")
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR",
                 "WANDB_ARTIFACT_DIR"):
        os.environ[name] = str(root / name.lower())
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cache folder shared by every test that uses the synthetic benchmark."""
    return tmp_path_factory.mktemp("synthetic")


TINY_SYNTHETIC = {
    "num_contexts": 1,
    "train_per_class": 4,
    "val_per_class": 2,
    "test_per_class": 3,
    "size": 48,
    "frames_per_video": 12,
    "num_frames": 4,
    "train_crop_size": 32,
    "test_crop_size": 32,
    "short_side": 36,
    "batch_size": 4,
    "num_workers": 0,
}


def free_port() -> int:
    """A TCP port on localhost that nothing listens on (for a process group's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
