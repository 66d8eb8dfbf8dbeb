"""The command line: demo config, two runs in a row, W&B offline files, test from a checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import TINY_SYNTHETIC

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"


def tiny_overrides(tmp_path: Path, synthetic_root: Path) -> Path:
    """A second --config that shrinks the demo to seconds."""
    data = {k: v for k, v in TINY_SYNTHETIC.items()}
    data.update(data_dir=str(synthetic_root), test_clips=2, test_crops=3)
    config = {
        "trainer": {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1,
                    "enable_progress_bar": False},
        "model": {"init_args": {"backbone": {"init_args": {"width_multiplier": 0.125}}}},
        "data": {"init_args": data},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


@pytest.mark.slow
def test_fit_twice_then_test_from_checkpoint(tmp_path, synthetic_root) -> None:
    tiny = tiny_overrides(tmp_path, synthetic_root)
    for _ in range(2):  # a second run must not clash with the first one's config.yaml
        result = run_cli("fit", "--config", str(DEMO), "--config", str(tiny), cwd=tmp_path)
        printed = result.stdout + result.stderr
        # the noise a run used to print: project's own silenced, dependencies' filtered
        for noise in ("litlogger", "anonymous", "LeafSpec", "multiple `ModelCheckpoint`",
                      "sync_dist", "Total FLOPs: 0", "will be deleted"):
            assert noise not in printed, noise
        assert "test/acc1_video" in printed  # the test after fit ran and reported
    runs = sorted((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    for run in runs:
        saved = yaml.safe_load((run / "files" / "config.yaml").read_text())
        assert saved["model"]["init_args"]["backbone"]["class_path"] == "models.video_resnet"
        assert saved["data"]["init_args"]["num_contexts"] == 1
        assert list(run.glob("*.wandb")), "no offline W&B log written"
    checkpoints = sorted((tmp_path / "runs").glob("finegrain/*/checkpoints/last.ckpt"))
    assert len(checkpoints) == 2
    # self-contained: the model's config travels in the checkpoint, loadable weights-only
    hparams = torch.load(checkpoints[0], weights_only=True)["hyper_parameters"]
    assert hparams["num_classes"] == 4
    assert hparams["backbone"]["class_path"] == "models.video_resnet"
    result = run_cli("test", "--config", str(DEMO), "--config", str(tiny),
                     "--ckpt_path", str(checkpoints[0]), cwd=tmp_path)
    assert "test/acc1_video" in result.stdout
    assert "test/num_videos" in result.stdout


def test_print_config_is_complete(capsys) -> None:
    from cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(DEMO), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    backbone = printed["model"]["init_args"]["backbone"]
    assert backbone["class_path"] == "models.video_resnet"
    assert backbone["init_args"]["depth"] == 18
    assert printed["data"]["init_args"]["sampling"] == "uniform"
    assert printed["trainer"]["logger"]["class_path"].endswith("WandbLogger")


def test_unknown_key_is_named(tmp_path, capsys) -> None:
    from cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epoch: 3\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(DEMO), "--config", str(bad)], run=False)
    assert exit_info.value.code != 0
    assert "max_epoch" in capsys.readouterr().err


def test_wrong_type_is_named(tmp_path, capsys) -> None:
    from cli import main

    with pytest.raises(SystemExit):
        main(["--config", str(DEMO), "--data.init_args.num_frames=many"], run=False)
    assert "num_frames" in capsys.readouterr().err


def test_reduced_precision_on_cpu_warns(tmp_path, synthetic_root) -> None:
    from cli import main

    tiny = tiny_overrides(tmp_path, synthetic_root)
    with pytest.warns(UserWarning, match="bf16-mixed"):
        main(["--config", str(DEMO), "--config", str(tiny),
              "--trainer.precision=16-mixed", "--trainer.logger=false"], run=False)
