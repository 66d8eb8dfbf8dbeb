"""A bad config value gets a few lines naming the key and what is allowed, not a usage dump."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_modules.cli_errors import condense, plain_values

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"


def cli_error(capsys, tmp_path: Path, *args: str, config: str | None = None) -> list[str]:
    """stderr lines of ``cli.py --config demo.yaml [--config bad.yaml] ARGS`` (run=False: no
    subcommand, the CLI only parses and instantiates)."""
    from cli import main

    extra = []
    if config is not None:
        bad = tmp_path / "bad.yaml"
        bad.write_text(config)
        extra = ["--config", str(bad)]
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(DEMO), *extra, *args, "--trainer.logger=false"], run=False)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(("config", "key", "allowed"), [
    ("data:\n  init_args:\n    num_frames: 0\n", "data.init_args.num_frames", "v>0"),
    ("data:\n  init_args:\n    test_crops: 4\n", "data.init_args.test_crops", "[1, 3, 5, 10]"),
    ("data:\n  init_args:\n    sampling: foo\n", "data.init_args.sampling", "'uniform', 'dense'"),
    ("model:\n  init_args:\n    backbone:\n      init_args:\n        depth: 19\n",
     "model.init_args.backbone.init_args.depth", "[18, 34, 50, 101, 152]"),
    ("model:\n  init_args:\n    head:\n      init_args:\n        dropout: 1.5\n",
     "model.init_args.head.init_args.dropout", "v<1"),
])
def test_bad_value_is_one_line_naming_key_and_allowed_values(capsys, tmp_path, config, key,
                                                             allowed) -> None:
    lines = cli_error(capsys, tmp_path, config=config)
    assert len(lines) == 2, lines  # the error and where to read more: no usage dump
    assert lines[0].startswith(f"error: {key} ")
    assert allowed in lines[0]
    assert "--help" in lines[1]


def test_wrong_key_names_it_and_suggests_the_right_one(capsys, tmp_path) -> None:
    lines = cli_error(capsys, tmp_path, config="data:\n  init_args:\n    num_framez: 3\n")
    assert len(lines) == 2, lines
    assert "'num_framez' is not accepted" in lines[0]
    assert "did you mean 'num_frames'" in lines[0]
    lines = cli_error(capsys, tmp_path, config="trainer:\n  max_epoch: 3\n")
    assert len(lines) == 2, lines
    assert "max_epoch" in lines[0] and "did you mean 'trainer.max_epochs'" in lines[0]


def test_wrong_value_on_the_command_line(capsys, tmp_path) -> None:
    lines = cli_error(capsys, tmp_path, "--data.init_args.short_side=-3")
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: data.init_args.short_side ")
    assert "given: -3" in lines[0]


def test_constructor_check_is_one_line(capsys, tmp_path) -> None:
    # num_confusing can only be checked against num_classes, which the data gives at
    # instantiation: the head's own check must reach the user as one line too
    lines = cli_error(capsys, tmp_path, "--model.init_args.head=models.heads.U2SHead",
                      "--model.init_args.head.init_args.num_confusing=20")
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [
        "error: models.heads.u2s.U2SHead: num_confusing must be in [1, 8], got 20.0"]
    assert not any("Traceback" in line for line in lines)


def test_condense_keeps_every_real_alternative() -> None:
    message = (
        'Parser key "data":\n'
        "  Does not validate against any of the Union subtypes\n"
        "  Subtypes: [<class 'datamodules.base.VideoDataModule'>, <class 'NoneType'>]\n"
        "  Errors:\n"
        "    - Problem with given class_path 'datamodules.VideoFolderDataModule':\n"
        '        Parser key "val_fraction":\n'
        "          Not of type float: could not convert 'x'\n"
        "    - Expected a <class 'NoneType'>\n"
        "  Given value type: <class 'dict'>\n"
        "  Given value: {'init_args': {'val_fraction': 'x'}}\n")
    assert condense(message) == [
        "data.init_args.val_fraction (datamodules.VideoFolderDataModule): Not of type float: "
        "could not convert 'x'"]


def test_restricted_numbers_become_plain_for_weights_only_checkpoints(tmp_path) -> None:
    from jsonargparse import Namespace
    from jsonargparse.typing import ClosedUnitInterval, PositiveInt

    config = Namespace(a=PositiveInt(3), b=[Namespace(c=ClosedUnitInterval(0.5))], d=True)
    plain_values(config)
    assert type(config.a) is int and type(config.b[0].c) is float and config.d is True
    torch.save({"hparams": config.as_dict()}, tmp_path / "x.pt")
    assert torch.load(tmp_path / "x.pt", weights_only=True)["hparams"]["a"] == 3


def test_a_mistyped_option_that_prefixes_a_real_one_is_refused(capsys, tmp_path) -> None:
    """argparse would take ``--trainer.max_epoch`` as ``--trainer.max_epochs``."""
    lines = cli_error(capsys, tmp_path, "--trainer.max_epoch=3")
    assert len(lines) == 2, lines
    assert "trainer.max_epoch" in lines[0] and "did you mean 'trainer.max_epochs'" in lines[0]
