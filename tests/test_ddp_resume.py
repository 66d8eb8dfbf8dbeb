"""Mid-epoch resume under DDP (2 CPU processes, gloo, through Lightning): a fit SIGTERMed in the
middle of epoch 1 and resumed from its ``last.ckpt`` trains, on every rank, exactly the batches
an uninterrupted fit trains (none repeated, none skipped) and ends with the same weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datamodules import SyntheticFineGrainedDataModule
from tests.conftest import TINY_SYNTHETIC
from tests.ddp_resume_job import EPOCHS, SIGTERM_AT

ROOT = Path(__file__).resolve().parents[1]


def steps(folder: Path, rank: int) -> list[tuple[int, int, list[int]]]:
    rows = [line.split() for line in (folder / f"steps.{rank}").read_text().splitlines()]
    return [(int(r[1]), int(r[2]), [int(i) for i in r[3:]]) for r in rows]


@pytest.mark.slow
def test_mid_epoch_resume_under_ddp_sees_the_unseen_batches(tmp_path, synthetic_root) -> None:
    SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC).prepare_data()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    job = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "tests" / "ddp_resume_job.py"), str(synthetic_root), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600)
    assert job.returncode == 0, (job.stdout + job.stderr)[-6000:]
    straight, resumed = tmp_path / "straight", tmp_path / "preempted"
    steps_per_epoch = 4
    for rank in (0, 1):
        one, two = steps(straight, rank), steps(resumed, rank)
        assert [s for _, s, _ in one] == list(range(1, EPOCHS * steps_per_epoch + 1))
        # the interrupted run's steps 1 … 6, then the resumed run's 7 … 8: the same batches
        assert two == one, rank
        assert one[SIGTERM_AT][0] == 1 and one[SIGTERM_AT - 1][0] == 1  # mid-epoch 1
    # the two ranks share each epoch, every video once
    for epoch in range(EPOCHS):
        seen = [i for rank in (0, 1) for e, _, idx in steps(straight, rank) if e == epoch
                for i in idx]
        assert sorted(seen) == list(range(16))
    a, b = (torch.load(f / "last.ckpt", weights_only=True) for f in (straight, resumed))
    assert a["global_step"] == b["global_step"] == EPOCHS * steps_per_epoch
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
