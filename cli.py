"""Finegrain's command line: ``python cli.py fit|validate|test|predict --config FILE.yaml``."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import sys
from pathlib import Path

import yaml
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from datamodules import VideoDataModule
from lightning_modules import EpochSummary, PredictionCSVWriter, VideoRecognizer
from lightning_modules.cli_errors import ShortErrorParser, constructor_error, plain_values
from lightning_modules.csv_metrics import AppendingCSVLogger
from lightning_modules.quiet import drop_wandb_anonymous, quiet_dependencies
from lightning_modules.run_folder import RunFolder, prepare_run_folder

quiet_dependencies()


def _fix_nested_command_line_values() -> None:
    """Two jsonargparse (4.53) slips that the command line hits two class levels down, where a
    backbone's options live (``--model.init_args.backbone.init_args.X=…``):

    - a nested option's value is loaded from YAML at the outer class, then handed to the inner
      class's parser re-rendered as ``f"--{key}={value}"``: ``null`` became the string "None",
      which every ``str``-typed option (``pretrained``, paths) accepts. Rendering it back as JSON
      (``null``, ``true``, ``[1, 2]``), which YAML reads as the same value, keeps it ``None``.
    - a ``class_path`` naming a builder function (``models.video_resnet``) under a class whose
      arguments are linked (``VideoRecognizer``'s ``num_classes``) made its parser with the
      class-only ``linked_targets`` option, which functions reject.
    """
    from jsonargparse import Namespace, _typehints

    if getattr(_typehints.adapt_class_type, "finegrain_fixed", False):
        return
    adapt_class_type = _typehints.adapt_class_type
    class_parser = _typehints.cached_get_class_parser

    def adapt_class_type_keeping_values(value, *args, **kwargs):
        init_args = value.get("init_args") if isinstance(value, (dict, Namespace)) else None
        if isinstance(init_args, _typehints.NestedArg) and not isinstance(init_args.val, str):
            with contextlib.suppress(TypeError):  # not JSON (a Namespace …): leave it be
                value["init_args"] = _typehints.NestedArg(init_args.key, json.dumps(init_args.val))
        return adapt_class_type(value, *args, **kwargs)

    def class_parser_for_functions_too(*, val_class, sub_add_kwargs, **kwargs):
        target = _typehints.import_object(val_class) if isinstance(val_class, str) else val_class
        if sub_add_kwargs and not inspect.isclass(target):
            sub_add_kwargs = {k: v for k, v in sub_add_kwargs.items() if k != "linked_targets"}
        return class_parser(val_class=val_class, sub_add_kwargs=sub_add_kwargs, **kwargs)

    adapt_class_type_keeping_values.finegrain_fixed = True
    _typehints.adapt_class_type = adapt_class_type_keeping_values
    _typehints.cached_get_class_parser = class_parser_for_functions_too


_fix_nested_command_line_values()


class SaveRunConfig(SaveConfigCallback):
    """Store the full resolved config with the run, in a folder no other run writes to.

    Lightning's default writes ``config.yaml`` into ``trainer.log_dir``; with ``WandbLogger``
    that is the shared ``save_dir``, so a second run aborts (Lightning #7679, #11256). Here the
    file goes into the W&B run's own folder (uploaded with the run) or the logger's versioned
    folder, and the config is also logged as the run's hyper-parameters.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs["save_to_log_dir"] = False
        super().__init__(*args, **kwargs)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config))
        logger = trainer.logger
        if logger is None:  # nothing to attach the file to; don't litter the working folder
            return
        if isinstance(logger, WandbLogger):
            run_dir = Path(logger.experiment.dir)
        else:
            run_dir = Path(trainer.log_dir or trainer.default_root_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, run_dir / self.config_filename, overwrite=True,
                         multifile=self.multifile)
        logger.log_hyperparams({"config": config})
        rank_zero_info(f"resolved config saved to {run_dir / self.config_filename}")


def add_csv_logger(trainer: Trainer) -> CSVLogger | None:
    """A ``CSVLogger`` beside the run's ``WandbLogger`` (W&B stays the tracker; the CSV is a
    plain local copy of every logged metric; rows of later commands are appended), in the
    folder that holds the run's checkpoints:
    ``<checkpoint dir>/../metrics.csv``. Nothing is added without W&B or when a CSV logger is
    already configured."""
    loggers = list(trainer.loggers)
    wandb = next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)
    if wandb is None or any(isinstance(lg, CSVLogger) for lg in loggers):
        return None
    checkpoint = trainer.checkpoint_callback
    dirpath = getattr(checkpoint, "dirpath", None)
    if dirpath:
        folder = Path(dirpath).parent
    else:  # where Lightning puts a W&B run's checkpoints: <save_dir>/<project>/<run id>/
        if trainer.is_global_zero:
            _ = wandb.experiment  # starts the (offline) run: its id names the folder
        folder = Path(wandb.save_dir or ".") / str(wandb.name) / str(wandb.version)
    csv = AppendingCSVLogger(save_dir=str(folder), name="", version="")
    trainer.loggers = [*loggers, csv]  # W&B stays first: Lightning's folders follow it
    rank_zero_info(f"metrics also written to {Path(csv.log_dir) / 'metrics.csv'}")
    return csv


def _schedule_length(max_epochs: int | None) -> int:
    # Lightning trains 1000 epochs when neither max_epochs nor max_steps is given
    return max_epochs if max_epochs is not None and max_epochs > 0 else 1000


class FinegrainCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # num_classes and class names come from the data, never typed twice
        parser.link_arguments("data.num_classes", "model.init_args.num_classes",
                              apply_on="instantiate")
        parser.link_arguments("data.classes", "model.init_args.class_names",
                              apply_on="instantiate")
        # always there, whatever trainer.callbacks a config lists: one metrics line per epoch
        # when stdout is a file (--epoch_summary.when=always|never)
        parser.add_lightning_class_args(EpochSummary, "epoch_summary")
        # `cli.py predict` writes a CSV (path, top-5, every branch's top-1) and says where
        parser.add_lightning_class_args(PredictionCSVWriter, "prediction_csv")
        parser.add_argument("--test_after_fit", type=bool, default=False,
                            help="after fit, test the best checkpoint on the test split")
        # a cosine schedule ends with training, whatever --trainer.max_epochs says; schedules
        # without T_max (MultiStepLR, ...) are left alone
        parser.link_arguments("trainer.max_epochs",
                              "model.init_args.lr_scheduler.init_args.T_max",
                              compute_fn=_schedule_length, apply_on="parse")

    def before_instantiate_classes(self) -> None:
        plain_values(self.config)  # checked at parse time; plain numbers from here on
        # Lightning swaps 16-mixed for bf16-mixed on CPU, 100–300× slower for 3D convs here
        config = self.config.get(self.subcommand, self.config)
        precision = str(config.trainer.get("precision") or "32-true")
        self._reduced_precision = precision not in ("32", "32-true", "64", "64-true")
        self._asked_precision = precision
        # runs/<project>/<name>/: checkpoints and the W&B id, so `--ckpt_path last` resumes
        self._run_folder: RunFolder | None = prepare_run_folder(config, self.subcommand or "")

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as error:  # a value a constructor checks: one line, not a traceback
            from jsonargparse._common import debug_mode_active

            if debug_mode_active():
                raise
            sys.stderr.write(constructor_error(error) + "\n")
            raise SystemExit(2) from error

    def after_instantiate_classes(self) -> None:
        drop_wandb_anonymous(self.trainer.loggers)
        if self._reduced_precision and isinstance(self.trainer.accelerator, CPUAccelerator):
            message = (
                f"precision={self._asked_precision!r} on a CPU: Lightning runs it as bf16-mixed, "
                "which is 100-300x slower for 3D convolutions on CPUs without bf16 instructions. "
                "Use --trainer.precision=32-true on CPU; 16-mixed is meant for GPUs."
            )
            rank_zero_warn(message)

    def before_fit(self) -> None:
        logger = self.trainer.logger
        if self._run_folder is not None and isinstance(logger, WandbLogger) \
                and self.trainer.is_global_zero:
            self._run_folder.remember(logger.experiment.id)
        add_csv_logger(self.trainer)

    def before_test(self) -> None:
        add_csv_logger(self.trainer)

    def after_fit(self) -> None:
        checkpoint = self.trainer.checkpoint_callback
        best = getattr(checkpoint, "best_model_path", "") or ""
        if best:
            rank_zero_info(f"best checkpoint: {best}")
        if self.config.fit.get("test_after_fit"):
            # the path itself, not "best": LastCheckpoint is a second ModelCheckpoint, and
            # "best" makes Lightning warn on every run that it picked the first one
            self.trainer.test(self.model, datamodule=self.datamodule,
                              ckpt_path=best or None, weights_only=True)


def main(args: list[str] | None = None, run: bool = True) -> FinegrainCLI:
    # backbones' weight-load reports (models has no Lightning, so it logs; here they are shown)
    weights_log = logging.getLogger("models.weights")
    if not weights_log.handlers:
        weights_log.addHandler(logging.StreamHandler())
        weights_log.setLevel(logging.INFO)
    return FinegrainCLI(
        VideoRecognizer,
        VideoDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=SaveRunConfig,
        parser_class=ShortErrorParser,
        args=args,
        run=run,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["analyze"]:
        # analyses of finished runs (result files, checkpoints): not a Trainer subcommand
        from lightning_modules.analysis.commands import main as analyze

        sys.exit(analyze(sys.argv[2:]))
    main()
