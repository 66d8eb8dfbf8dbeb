"""Every YAML under experiments/ parses and instantiates (model + datamodule) on tiny fixtures.

Configs are composed (``--config base.yaml --config row.yaml …``), so a file alone is often not
a complete config. Each file's header documents the command(s) that use it
(``python cli.py fit --config …``); this test collects every such command from every header,
checks that each YAML is named by at least one, and runs each distinct command through the
project's CLI with ``run=False`` — data pointed at a tiny generated copy of the dataset in its
real on-disk format (``tests.fixtures_datasets``), CPU, no logger, no pretrained download — then
sets the datamodule up and checks that the classes flowed into the model. Models are built on the
``meta`` device: full ResNet-152 / InceptionV1 shapes, no memory, no initialisation cost.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests import fixtures_datasets as fx
from tests.conftest import TINY_SYNTHETIC

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
CONFIGS = sorted(EXPERIMENTS.rglob("*.yaml"))


def header_commands(path: Path) -> list[list[str]]:
    """The ``python cli.py fit|test …`` commands in a file's leading comment block."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = "\n".join(lines)
    text = re.sub(r"\\\n\s*", " ", text)  # shell line continuations
    commands = []
    for line in text.splitlines():
        if "python cli.py" not in line:
            continue
        tokens = shlex.split(line[line.index("python cli.py"):], comments=True)
        commands.append(tokens[2:])  # drop "python cli.py"
    return commands


def normalise(tokens: list[str]) -> tuple[str, ...]:
    """Subcommand dropped (``run=False`` parses one level), ``--ckpt_path`` dropped,
    ``<seed>`` → 0, other placeholders kept as plain strings (paths never opened here)."""
    out: list[str] = []
    skip = False
    for token in tokens[1:]:
        if skip:
            skip = False
            continue
        if token == "--ckpt_path":
            skip = True
            continue
        if token.startswith("--ckpt_path="):
            continue
        out.append(token.replace("<seed>", "0"))
    return tuple(out)


def config_files(command: tuple[str, ...]) -> list[str]:
    files = []
    for i, token in enumerate(command):
        if token == "--config":
            files.append(command[i + 1])
        elif token.startswith("--config="):
            files.append(token.split("=", 1)[1])
    return files


COMMANDS: dict[tuple[str, ...], str] = {}
for _path in CONFIGS:
    for _tokens in header_commands(_path):
        if any("<" in f for f in config_files(tuple(_tokens))):
            continue  # a pattern (``<paper>/<row>.yaml``), not a command
        COMMANDS.setdefault(normalise(_tokens), _path.relative_to(ROOT).as_posix())


def component_files(config: str) -> set[str]:
    """YAML files a config names as a value (``train_transform: ../../transforms/x.yaml``:
    jsonargparse reads a class from a file, relative to the config that names it)."""
    path = ROOT / config
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.endswith((".yaml", ".yml")):
            found.add((path.parent / node).resolve().relative_to(ROOT).as_posix())

    walk(yaml.safe_load(path.read_text()) or {})
    return found


def test_every_config_is_used_by_a_documented_command() -> None:
    named = {f for command in COMMANDS for f in config_files(command)}
    named |= {c for f in list(named) if (ROOT / f).is_file() for c in component_files(f)}
    orphans = [p.relative_to(ROOT).as_posix() for p in CONFIGS
               if p.relative_to(ROOT).as_posix() not in named]
    assert not orphans, f"YAML files no header command uses (add one to their header): {orphans}"
    missing = sorted(f for f in named if not (ROOT / f).is_file())
    assert not missing, f"header commands name files that do not exist: {missing}"


def test_paper_configs_say_gpu_and_name_their_row() -> None:
    """Paper configs run on GPUs in 16-mixed; every paper file names its paper and number."""
    for path in CONFIGS:
        relative = path.relative_to(EXPERIMENTS).as_posix()
        # transforms/: components rows name (their headers cite the paper's section)
        if relative.startswith(("synthetic/", "u2s/", "transforms/")) or "/" not in relative:
            continue
        header = "\n".join(line for line in path.read_text().splitlines()
                           if line.startswith("#"))
        assert header, f"{relative}: no header comment"
        data = yaml.safe_load(path.read_text()) or {}
        if path.name == "base.yaml":
            assert data["trainer"]["precision"] == "16-mixed", relative
            assert data["trainer"]["accelerator"] == "gpu", relative
        else:
            # the paper's number, or an explicit "no table number" (figure-only rows)
            assert re.search(r"\d+\.\d|\d+\s*%|no (table )?number", header), \
                f"{relative}: header names no paper number"
            assert re.search(r"Table|Fig\.|§", header), f"{relative}: header names no table row"


def test_each_papers_rows_train_with_its_own_augmentation() -> None:
    """Every model row under ``<dataset>/<paper>/`` names ``transforms/<paper>_train.yaml``;
    s3d's rows also test with s3d's view (``transforms/s3d_test.yaml``, §3.2)."""
    rows = s3d_rows = 0
    for path in CONFIGS:
        parts = path.relative_to(EXPERIMENTS).parts
        if len(parts) != 3 or parts[1] not in ("dfb", "u2s", "s3d", "unified"):
            continue
        data = yaml.safe_load(path.read_text()) or {}
        if "class_path" not in (data.get("model") or {}) or "data" not in data:
            continue  # a fragment that goes on top of a row (test views, temporal pooling, …)
        transform = data["data"]["init_args"].get("train_transform")
        assert transform == f"../../transforms/{parts[1]}_train.yaml", path
        rows += 1
        if parts[1] == "s3d":
            views = data["data"]["init_args"].get("test_views")
            assert views == "../../transforms/s3d_test.yaml", path
            s3d_rows += 1
    assert rows > 70 and s3d_rows == 20


# ---- fixtures: one tiny copy of each dataset format -------------------------------------------
@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> dict:
    root = tmp_path_factory.mktemp("experiment-datasets")
    built = {
        "KineticsDataModule": fx.build_kinetics(root / "kinetics"),
        "SomethingSomethingV1DataModule": fx.build_ssv1(root / "ssv1"),
        "SomethingSomethingV2DataModule": fx.build_ssv2(root / "ssv2"),
        "UCF101DataModule": fx.build_ucf101(root / "ucf101"),
        "HMDB51DataModule": fx.build_hmdb51(root / "hmdb51"),
        "VideoFolderDataModule": fx.build_folder(root / "folder"),
    }
    return {"built": built, "synthetic_root": synthetic_root}


def data_class(command: tuple[str, ...]) -> str:
    class_path = None
    for name in config_files(command):
        data = yaml.safe_load((ROOT / name).read_text()) or {}
        class_path = (data.get("data") or {}).get("class_path", class_path)
    assert class_path, f"no data.class_path in {config_files(command)}"
    return class_path.rsplit(".", 1)[-1]


def fixture_overrides(cls: str, datasets: dict) -> tuple[list[str], int]:
    """Arguments that point the datamodule at its tiny fixture; the expected class count."""
    small = ["--data.init_args.num_workers=0", "--data.init_args.batch_size=2"]
    if cls == "SyntheticFineGrainedDataModule":
        args = [f"--data.init_args.data_dir={datasets['synthetic_root']}"]
        for key in ("num_contexts", "train_per_class", "val_per_class", "test_per_class",
                    "size", "frames_per_video"):
            args.append(f"--data.init_args.{key}={TINY_SYNTHETIC[key]}")
        return args + small, 4 * TINY_SYNTHETIC["num_contexts"]
    fixture = datasets["built"][cls]
    args = [f"--data.init_args.data_dir={fixture.data_dir}"]
    if cls != "VideoFolderDataModule":
        # the real class lists / subsets (Mini-Kinetics-200, Mini-SSV2) name classes the
        # 3-4-class fixtures lack
        args += [f"--data.init_args.annotation_dir={fixture.annotation_dir}",
                 "--data.init_args.classes_subset=null", "--data.init_args.max_per_class=null"]
    return args + small, len(fixture.classes)


CPU = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto",
       "--trainer.precision=32-true", "--trainer.sync_batchnorm=false", "--trainer.logger=false"]


@pytest.fixture(scope="module")
def cli_parser(datasets: dict):
    """The project CLI's parser, built once (building it is a third of a ``main()`` call)."""
    from cli import main

    demo = ["--config", str(EXPERIMENTS / "demo.yaml"), *CPU,
            *fixture_overrides("SyntheticFineGrainedDataModule", datasets)[0]]
    with torch.device("meta"):
        return main(demo, run=False).parser


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=lambda c: " + ".join(
    Path(f).with_suffix("").as_posix().removeprefix("experiments/") for f in config_files(c)))
def test_config_instantiates(command: tuple[str, ...], datasets: dict, cli_parser) -> None:
    from lightning_modules import VideoRecognizer

    cls = data_class(command)
    data_args, num_classes = fixture_overrides(cls, datasets)
    if _data_value(command, "video_backend") == "flow" and cls != "SyntheticFineGrainedDataModule":
        data_args.append(f"--data.init_args.data_dir={flow_fixture(cls, datasets)}")
    args = [*command, *CPU, *data_args]
    if "pretrained" in _backbone_keys(command):
        # nothing is downloaded or read here: the weights the config names are not loaded
        args.append("--model.init_args.backbone.init_args.pretrained=null")
    if any("U2SHead" in (ROOT / f).read_text() for f in config_files(command)):
        # the CSM's confusable-class count must fit the 3-4 fixture classes
        args.append("--model.init_args.head.init_args.num_confusing=2")
    with torch.device("meta"):  # full-size shapes, no memory, no initialisation cost
        config = cli_parser.parse_args(args)
        objects = cli_parser.instantiate_classes(config)
    model, datamodule = objects.model, objects.data
    assert isinstance(model, VideoRecognizer)
    assert type(datamodule).__name__ == cls
    assert model.num_classes == num_classes == datamodule.num_classes
    assert model.class_names == list(datamodule.classes)
    datamodule.setup("fit")
    assert datamodule.datasets["train"].records, f"{cls}: no training records on the fixture"


def _data_value(command: tuple[str, ...], key: str) -> object:
    value = None
    for name in config_files(command):
        data = yaml.safe_load((ROOT / name).read_text()) or {}
        value = ((data.get("data") or {}).get("init_args") or {}).get(key, value)
    return value


def flow_fixture(cls: str, datasets: dict) -> Path:
    """The fixture's layout with a flow folder (``flow_x_00001.jpg`` …) in place of each video,
    as ``prepare flow`` writes it (built once per dataset)."""
    from torchvision.io import encode_jpeg

    from datamodules.annotations import VIDEO_EXTENSIONS

    source = Path(datasets["built"][cls].data_dir)
    target = source.parent / f"{source.name}-flow"
    if target.exists():
        return target
    jpeg = encode_jpeg(torch.full((1, 8, 8), 128, dtype=torch.uint8)).numpy().tobytes()
    for video in source.rglob("*"):
        if video.suffix.lower() not in VIDEO_EXTENSIONS:
            continue
        folder = target / video.relative_to(source).with_suffix("")
        folder.mkdir(parents=True)
        for k in range(1, 13):
            for axis in "xy":
                (folder / f"flow_{axis}_{k:05d}.jpg").write_bytes(jpeg)
    return target


def test_null_two_class_levels_down_on_the_command_line_is_none(cli_parser, datasets) -> None:
    args = ["--config", str(EXPERIMENTS / "demo.yaml"), *CPU,
            *fixture_overrides("SyntheticFineGrainedDataModule", datasets)[0],
            "--model.init_args.backbone.class_path=models.video_resnet",
            "--model.init_args.backbone.init_args.pretrained=null"]
    config = cli_parser.parse_args(args)
    assert config.model.init_args.backbone.init_args.pretrained is None
    assert config.model.init_args.backbone.init_args.depth == 18  # the rest of the YAML kept


def _backbone_keys(command: tuple[str, ...]) -> set[str]:
    keys: set[str] = set()
    for name in config_files(command):
        data = yaml.safe_load((ROOT / name).read_text()) or {}
        backbone = ((data.get("model") or {}).get("init_args") or {}).get("backbone") or {}
        keys |= set(backbone.get("init_args") or {})
    return keys


def test_sweep_pair_measures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's per-pair accuracy: true class vs its time-reversed / local-detail twin."""
    import importlib.util

    from datamodules.synthetic import synthetic_class_names
    from lightning_modules.analysis.predictions import save_predictions

    spec = importlib.util.spec_from_file_location("finegrain_sweep", EXPERIMENTS / "sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "finegrain_sweep", sweep)  # its dataclasses look it up
    spec.loader.exec_module(sweep)
    names = synthetic_class_names(1)  # top-grow, top-shrink, bottom-grow, bottom-shrink
    assert sweep.twin(names[0], "reversal") == names[1]
    assert sweep.twin(names[0], "detail") == names[2]
    labels = torch.tensor([0, 1, 2, 3])
    # every video: its time-reversed twin first, the true class second, the detail twin low
    # → top-1 0 %, reversal pair 0 %, detail pair 100 %
    probs = torch.full((4, 4), 0.05)
    probs[torch.arange(4), torch.tensor([1, 0, 3, 2])] = 0.6
    probs[torch.arange(4), labels] = 0.3
    path = save_predictions(tmp_path / "p.pt", video_ids=list("abcd"), index=torch.arange(4),
                            labels=labels, class_names=names, probs={"avg": probs},
                            final="avg", metrics={"test/acc1_clip": 0.25})
    result = sweep.measures(path)["avg"]
    assert result["acc"] == 0.0 and result["reversal"] == 0.0 and result["detail"] == 100.0
    assert result["clip"] == 25.0


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*/u2s/stage*.yaml")),
                         ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_u2s_paper_configs_follow_the_paper(path: Path) -> None:
    """u2s §III-A pre-activation ResNet, the stage freezing callback, and in stage 2 N from
    the dataset's top-N standard (§IV-B)."""
    config = yaml.safe_load(path.read_text())
    assert config["model"]["init_args"]["backbone"]["init_args"]["preact"] is True
    callbacks = {c["class_path"].rsplit(".", 1)[1]: c.get("init_args", {})
                 for c in config["trainer"]["callbacks"]}
    assert "U2SStageFreezing" in callbacks
    if path.stem == "stage2":
        standard = callbacks["CategorySimilarityCallback"]["top_n_standard"]
        assert standard == path.parent.parent.name  # something_v2 / ucf101 / hmdb51


def test_v2_transforms_from_yaml_reach_the_training_samples(cli_parser, datasets) -> None:
    """experiments/synthetic/v2_augment.yaml: torchvision v2 transforms named by class_path in
    a component file become the datamodule's train transform, one draw per (seed, epoch, index)."""
    from datamodules.randomness import SampleKey
    from datamodules.transforms import V2Transform

    files = ["base", "i3d", "v2_augment"]
    args = [a for f in files for a in ("--config", str(EXPERIMENTS / "synthetic" / f"{f}.yaml"))]
    args += [*CPU, *fixture_overrides("SyntheticFineGrainedDataModule", datasets)[0]]
    datamodule = cli_parser.instantiate_classes(cli_parser.parse_args(args)).data
    transform = datamodule.make_train_transform()
    assert isinstance(transform, V2Transform)
    assert [type(t).__name__ for t in transform.transforms.transforms] == [
        "RandomResizedCrop", "ColorJitter"]
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    key = SampleKey(index=3, epoch=1, seed=0)
    video = dataset[key]["video"]
    assert video.shape == (3, 8, 32, 32) and torch.equal(video, dataset[key]["video"])
