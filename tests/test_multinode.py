"""Multi-node DDP through Lightning, smoke-tested as two "nodes" on localhost: torchrun with
``--nnodes=2 --nproc_per_node=1`` (gloo, 2 processes) runs a fit and its multi-view test; the test
metrics equal one process's on the same checkpoint, and the job is one W&B run.

Most of its time is the four Python start-ups (two torchrun agents, two workers, each importing
torch and Lightning); the runs themselves are kept small: two training steps, one validation
batch, no sanity check, and only the callback that the comparison reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli import main
from lightning_modules.analysis import load_predictions
from tests.conftest import free_port
from tests.test_cli import DEMO
from tests.test_ddp import NUM_VIDEOS, overrides

ROOT = Path(__file__).resolve().parents[1]


def lean(path: Path, **trainer: Any) -> dict:
    """The config at ``path`` with the predictions writer as its only extra callback (the
    analysis callbacks have their DDP test in ``tests/test_ddp.py``) and ``trainer`` set."""
    config = yaml.safe_load(path.read_text())
    config["trainer"]["callbacks"] = [
        c for c in config["trainer"]["callbacks"]
        if c["class_path"].endswith(".TestPredictionsWriter")]
    config["trainer"].update(trainer)
    path.write_text(yaml.safe_dump(config))
    return config


@pytest.mark.slow
def test_two_nodes_fit_and_test_like_one_process(tmp_path, synthetic_root) -> None:
    nodes = overrides(tmp_path, synthetic_root, "nodes")
    config = lean(nodes, max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                  num_sanity_val_steps=0)
    config["test_after_fit"] = True  # tests the fitted weights, the ones last.ckpt holds
    config["trainer"]["callbacks"].append(
        {"class_path": "lightning_modules.callbacks.LastCheckpoint"})
    nodes.write_text(yaml.safe_dump(config))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = ["fit", "--config", str(DEMO), "--config", str(nodes), "--trainer.accelerator=cpu",
            "--trainer.strategy=ddp", "--trainer.devices=1", "--trainer.num_nodes=2"]
    launched = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
         f"--node_rank={rank}", "--master_addr=127.0.0.1", f"--master_port={port}",
         str(ROOT / "cli.py"), *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in (0, 1)]
    outputs = [p.communicate(timeout=600)[0] for p in launched]
    for p, out in zip(launched, outputs, strict=True):
        assert p.returncode == 0, out[-6000:]
    # one job of two processes, one per "node"
    assert "MEMBER: 1/2" in outputs[0] and "MEMBER: 2/2" in outputs[1]

    # one W&B run for the job (rank 0), its id kept in the run folder
    folder = tmp_path / "runs" / "finegrain" / "nodes"
    wandb_id = (folder / "wandb_id").read_text().strip()
    runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert [r.name.rsplit("-", 1)[1] for r in runs] == [wandb_id]
    last = folder / "checkpoints" / "last.ckpt"
    assert last.is_file()

    # the same checkpoint tested by one process gives the same metrics, every video once
    single = overrides(tmp_path, synthetic_root, "single")
    lean(single)
    main(["test", "--config", str(DEMO), "--config", str(single), "--trainer.logger=false",
          "--trainer.devices=1", "--ckpt_path", str(last)])
    one, two = (load_predictions(tmp_path / n / "test_predictions.pt") for n in ("single", "nodes"))
    assert two["metrics"]["test/num_videos"] == NUM_VIDEOS
    assert two["index"].tolist() == list(range(NUM_VIDEOS))
    for key in ("test/acc1_video", "test/acc5_video", "test/acc1_clip", "test/mean_class_acc"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], abs=1e-6), key
