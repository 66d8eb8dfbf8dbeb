"""Mid-epoch resume under DDP (2 CPU processes, gloo, through Lightning): a fit SIGTERMed in the
middle of epoch 1 and resumed from its ``last.ckpt`` trains, on every rank, exactly the batches
an uninterrupted fit trains (none repeated, none skipped) and ends with the same weights; each
rank gets back its own global generators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from datamodules import SyntheticFineGrainedDataModule
from lightning_modules.callbacks import LastCheckpoint
from tests.conftest import TINY_SYNTHETIC, free_port
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


def _rank_rng_roundtrip(rank: int, port: int, out: str) -> None:
    """Rank ``rank`` of 2: its own seed; the checkpoint's states (gathered on every rank, as
    Lightning builds a checkpoint's contents); 3 draws; load the states back; 3 draws again."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        torch.manual_seed(100 + rank)
        state = LastCheckpoint().state_dict()
        after_save = torch.rand(3)
        torch.rand(7)  # this rank moves on
        LastCheckpoint().load_state_dict(state)
        torch.save({"after_save": after_save, "after_load": torch.rand(3),
                    "ranks_in_checkpoint": len(state["rng_states"])}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_resumes_its_own_global_generators(tmp_path) -> None:
    mp.spawn(_rank_rng_roundtrip, args=(free_port(), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for result in ranks:
        assert result["ranks_in_checkpoint"] == 2
        assert torch.equal(result["after_load"], result["after_save"])
    assert not torch.equal(ranks[0]["after_load"], ranks[1]["after_load"])  # not rank 0's


def test_a_checkpoint_with_one_rng_state_still_loads() -> None:
    """Checkpoints written before per-rank states hold one dict."""
    torch.manual_seed(3)
    checkpoint = LastCheckpoint().state_dict()
    (checkpoint["rng_states"],) = checkpoint["rng_states"]
    expected = torch.rand(2)
    LastCheckpoint().load_state_dict(checkpoint)
    assert torch.equal(torch.rand(2), expected)
