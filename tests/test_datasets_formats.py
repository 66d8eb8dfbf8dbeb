"""Every dataset datamodule reads its published format and feeds batches in both sampling modes."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from datamodules import (
    HMDB51DataModule,
    KineticsDataModule,
    SomethingSomethingV1DataModule,
    SomethingSomethingV2DataModule,
    UCF101DataModule,
    VideoDataModule,
    VideoFolderDataModule,
)
from tests import fixtures_datasets as fx

# the frames backend decodes with torchvision's JPEG codec, deprecated in 0.29 (it silences
# this at import, but pytest resets warning filters per test)
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities:DeprecationWarning")

SMALL = dict(num_frames=4, train_crop_size=16, test_crop_size=16, short_side=20, batch_size=2,
             num_workers=0)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fx.Fixture]:
    root = tmp_path_factory.mktemp("datasets")
    return {
        "kinetics": fx.build_kinetics(root / "kinetics"),
        "ssv1": fx.build_ssv1(root / "ssv1"),
        "ssv2": fx.build_ssv2(root / "ssv2"),
        "ucf101": fx.build_ucf101(root / "ucf101"),
        "hmdb51": fx.build_hmdb51(root / "hmdb51"),
        "folder": fx.build_folder(root / "folder", split_dirs=True),
    }


def _ucf_label(path: str) -> int:
    return fx.UCF_CLASSES.index(Path(path).parent.name)


# how each datamodule is pointed at its fixture, and the label a record's path implies
MAKERS: dict[str, tuple[Callable[..., VideoDataModule], Callable[[str], int]]] = {
    "kinetics": (
        lambda f, **kw: KineticsDataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir),
                                           **kw),
        lambda p: sorted(fx.KINETICS_CLASSES).index(
            {c.replace(" ", "_"): c for c in fx.KINETICS_CLASSES}.get(Path(p).parent.name,
                                                                      Path(p).parent.name)),
    ),
    # SSv1 pointed at the parent of 20bn-something-something-v1/: found by name below it
    "ssv1": (
        lambda f, **kw: SomethingSomethingV1DataModule(str(f.data_dir.parent), **kw),
        lambda p: (int(Path(p).name) - 100) // 3,
    ),
    "ssv2": (
        lambda f, **kw: SomethingSomethingV2DataModule(
            str(f.data_dir), annotation_dir=str(f.annotation_dir), **kw),
        lambda p: (int(Path(p).stem) - 1) // 4,
    ),
    "ucf101": (
        lambda f, **kw: UCF101DataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir),
                                         split=2, **kw),
        _ucf_label,
    ),
    "hmdb51": (
        lambda f, **kw: HMDB51DataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir),
                                         split=3, **kw),
        lambda p: sorted(fx.HMDB_CLASSES).index(Path(p).parent.name),
    ),
    "folder": (
        lambda f, **kw: VideoFolderDataModule(str(f.data_dir), **kw),
        lambda p: sorted(["dog jumping", "cat's nap", "bird"]).index(Path(p).parent.name),
    ),
}


def make(name: str, built: dict[str, fx.Fixture], **kwargs) -> VideoDataModule:
    return MAKERS[name][0](built[name], **{**SMALL, **kwargs})


@pytest.mark.parametrize("name", list(MAKERS))
def test_classes_are_known_before_setup_in_the_published_order(name, built) -> None:
    dm = make(name, built)
    # LightningCLI reads these at instantiation, before any setup()
    assert dm.classes == built[name].classes
    assert dm.num_classes == len(built[name].classes)
    assert dm.datasets == {}


@pytest.mark.parametrize("sampling", ["uniform", "dense"])
@pytest.mark.parametrize("name", list(MAKERS))
def test_records_labels_and_batches(name, sampling, built) -> None:
    dm = make(name, built, sampling=sampling, frame_interval=2, test_clips=2, test_crops=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixtures' deliberately missing videos
        dm.setup()
    label_of = MAKERS[name][1]
    for split in ("train", "val", "test"):
        records = dm.datasets[split].records
        assert len(records) == built[name].counts.get(split, built[name].counts["val"])
        for record in records:
            assert os.path.exists(record.path)
            assert record.label == label_of(record.path), record
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["video"].shape) == (2, 3, 4, 16, 16)
    train_records = dm.datasets["train"].records
    assert batch["label"].tolist() == [train_records[i].label for i in batch["index"].tolist()]
    batch = next(iter(dm.test_dataloader()))
    assert tuple(batch["video"].shape) == (2, 6, 3, 4, 16, 16)  # 2 clips × 3 crops
    assert int(batch["skipped"].sum()) == 0


def test_kinetics_missing_videos_reported_once_with_names(built) -> None:
    dm = make("kinetics", built)
    with pytest.warns(UserWarning, match=r"1 of 5 val videos not found") as caught:
        dm.setup("fit")
        dm.setup("test")  # test reads the val list: same records, no second report
    assert len([w for w in caught if "not found" in str(w.message)]) == 1
    assert "GONEgone123_000005_000015" in str(caught[0].message)
    assert "validate.csv:6" in str(caught[0].message)
    assert dm.missing == {"val": ["GONEgone123_000005_000015"]}


def test_kinetics_untrimmed_source_read_in_its_window(built) -> None:
    records = make("kinetics", built).build_records("train")
    untrimmed = [r for r in records if r.start_sec is not None]
    assert len(untrimmed) == 1
    assert Path(untrimmed[0].path).name == "-x_31Ab-Q.mp4"
    assert (untrimmed[0].start_sec, untrimmed[0].end_sec) == (0.0, 1.0)


def test_kinetics_flat_layout_and_prefixed_csvs(built, tmp_path) -> None:
    f = built["kinetics"]
    flat = tmp_path / "flat"
    flat.mkdir()
    for video in f.data_dir.rglob("*.mp4"):
        os.link(video, flat / video.name)
    ann = tmp_path / "ann" / "kinetics400"
    ann.mkdir(parents=True)
    shutil.copy(f.annotation_dir / "train.csv", ann / "kinetics_400_train.csv")
    shutil.copy(f.annotation_dir / "validate.csv", ann / "kinetics_400_val.csv")
    dm = KineticsDataModule(str(flat), annotation_dir=str(tmp_path / "ann"), **SMALL)
    with pytest.warns(UserWarning, match="not found"):
        assert len(dm.build_records("val")) == 4
    assert len(dm.build_records("train")) == 8


def test_ssv1_records_carry_frame_counts(built) -> None:
    dm = make("ssv1", built)
    records = dm.build_records("train")
    # the fixture gives class ``label`` folders of 8 + label frames
    assert [r.num_frames for r in records] == [8 + r.label for r in records]


def test_ssv2_files_without_prefix_and_unlabelled_test(built, tmp_path) -> None:
    f = built["ssv2"]
    for file in f.annotation_dir.iterdir():
        shutil.copy(file, tmp_path / file.name.removeprefix("something-something-v2-"))
    dm = SomethingSomethingV2DataModule(str(f.data_dir), annotation_dir=str(tmp_path),
                                        test_split="test", **SMALL)
    assert dm.classes == fx.SS_CLASSES
    assert {r.label for r in dm.build_records("test")} == {-1}
    # the test answers file, when the user has it, labels the test list
    ids = [item["id"] for item in json.loads((tmp_path / "test.json").read_text())]
    fx.write_text(tmp_path / "test-answers.csv", [f"{i};Holding something" for i in ids])
    dm = SomethingSomethingV2DataModule(str(f.data_dir), annotation_dir=str(tmp_path),
                                        test_split="test", **SMALL)
    assert {r.label for r in dm.build_records("test")} == {3}


def test_ssv2_flip_is_off_by_default_and_auto_map_swaps_left_right(built) -> None:
    dm = make("ssv2", built)
    assert dm.flip is False
    dm = make("ssv2", built, flip=True, flip_label_map="auto")
    assert dm.resolved_flip_label_map() == {0: 2, 2: 0}
    dm.setup("fit")
    assert dm.datasets["train"].train_transform.flip_label_map == {0: 2, 2: 0}


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_and_hmdb51_splits(split, built) -> None:
    f = built["ucf101"]
    dm = UCF101DataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir), split=split,
                          **SMALL)
    assert {Path(r.path).stem[-7:-4] for r in dm.build_records("test")} == {f"g{split:02d}"}
    assert len(dm.build_records("train")) == 6
    f = built["hmdb51"]
    dm = HMDB51DataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir), split=split,
                          **SMALL)
    train, test = dm.build_records("train"), dm.build_records("test")
    assert {Path(r.path).stem[-1] for r in test} == {str(split - 1)}
    assert {Path(r.path).stem[-1] for r in train} == {str(split % 3)}  # 0 = unused, skipped


def test_folder_fraction_split_is_seeded_and_disjoint(tmp_path) -> None:
    f = fx.build_folder(tmp_path / "flat")
    dm = VideoFolderDataModule(str(f.data_dir), val_fraction=0.25, split_seed=3, **SMALL)
    train, val = dm.build_records("train"), dm.build_records("val")
    assert len(train) == 9 and len(val) == 3
    assert not {r.path for r in train} & {r.path for r in val}
    assert dm.build_records("test") == val
    again = VideoFolderDataModule(str(f.data_dir), val_fraction=0.25, split_seed=3, **SMALL)
    assert again.build_records("val") == val


def test_folder_split_files_and_frame_folders(tmp_path) -> None:
    root = tmp_path / "frames"
    for label, name in enumerate(["walk", "run"]):
        for i in range(2):
            fx.frame_folder(root / name / f"v{i}", seed=label * 2 + i, num_frames=6)
    fx.write_text(tmp_path / "train.txt", ["walk/v0.avi 1", "run/v0.avi 2"], newline="\r\n")
    fx.write_text(tmp_path / "val.txt", ["walk/v1.avi", "run/v1.avi"])
    dm = VideoFolderDataModule(str(root), annotation_dir=str(tmp_path),
                               split_files={"train": "train.txt", "val": "val.txt"},
                               video_backend="frames", **SMALL)
    assert dm.classes == ["run", "walk"]
    records = dm.build_records("train")
    assert [(Path(r.path).name, r.label, r.num_frames) for r in records] == [
        ("v0", 1, 6), ("v0", 0, 6)]
    dm.setup("fit")
    assert tuple(next(iter(dm.train_dataloader()))["video"].shape) == (2, 3, 4, 16, 16)


def test_kinetics_from_extracted_frame_folders_with_a_template(built, tmp_path) -> None:
    # `datamodules.prepare frames` mirrors the tree, one folder per video named after it
    f = built["kinetics"]
    for video in f.data_dir.rglob("*.mp4"):
        target = tmp_path / video.relative_to(f.data_dir).with_suffix("")
        fx.frame_folder(target, seed=0, num_frames=7, template="img_{:05d}.jpg")
    dm = KineticsDataModule(str(tmp_path), annotation_dir=str(f.annotation_dir),
                            video_backend="frames",
                            decoder_options={"template": "img_{:05d}.jpg"}, **SMALL)
    with pytest.warns(UserWarning, match="frame folders not found"):
        records = dm.build_records("train")
        dm.setup("fit")
    # the untrimmed source cannot be trimmed as frames: reported missing, the rest are found
    assert len(records) == 7 and dm.missing["train"] == ["-x_31Ab-Q_000000_000001"]
    assert {r.num_frames for r in records} == {7}
    assert tuple(next(iter(dm.train_dataloader()))["video"].shape) == (2, 3, 4, 16, 16)
