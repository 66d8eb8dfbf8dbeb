"""Bad input gets an error that names the file (and line) and says what is wrong."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from datamodules import (
    AnnotationError,
    HMDB51DataModule,
    KineticsDataModule,
    SomethingSomethingV1DataModule,
    SomethingSomethingV2DataModule,
    UCF101DataModule,
    VideoFolderDataModule,
)
from tests import fixtures_datasets as fx
from tests.test_datasets_formats import SMALL


@pytest.fixture(scope="module")
def ucf(tmp_path_factory: pytest.TempPathFactory) -> fx.Fixture:
    return fx.build_ucf101(tmp_path_factory.mktemp("ucf"))


@pytest.fixture(scope="module")
def ssv1(tmp_path_factory: pytest.TempPathFactory) -> fx.Fixture:
    return fx.build_ssv1(tmp_path_factory.mktemp("ssv1"))


def copy_annotations(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.avi", "*.webm", "*.mp4",
                                                            "*.jpg"))
    return dst


def test_missing_annotation_names_paths_tried_and_files_found(tmp_path) -> None:
    (tmp_path / "README.txt").write_text("hello")
    dm = UCF101DataModule(str(tmp_path), **SMALL)
    with pytest.raises(AnnotationError) as error:
        _ = dm.classes
    message = str(error.value)
    assert str(tmp_path / "classInd.txt") in message and "README.txt" in message
    with pytest.raises(AnnotationError, match="does not exist"):
        _ = KineticsDataModule(str(tmp_path / "nowhere"), **SMALL).classes


def test_unknown_class_names_file_and_line(ucf, tmp_path) -> None:
    ann = copy_annotations(ucf.annotation_dir, tmp_path / "ann")
    testlist = ann / "ucfTrainTestlist" / "testlist01.txt"
    lines = testlist.read_text().splitlines()
    lines[1] = "JugglingBalls/v_JugglingBalls_g01_c01.avi"
    fx.write_text(testlist, lines, newline="\r\n")
    dm = UCF101DataModule(str(ucf.data_dir), annotation_dir=str(ann), **SMALL)
    with pytest.raises(AnnotationError, match=re.escape(f"{testlist}:2") + ".*JugglingBalls"):
        dm.build_records("test")


def test_ssv1_label_missing_from_labels_file(ssv1, tmp_path) -> None:
    ann = copy_annotations(ssv1.annotation_dir, tmp_path / "ann")
    fx.write_text(ann / "something-something-v1-train.csv",
                  ["100;Holding something", "101;Pushing something from top to bottom"])
    dm = SomethingSomethingV1DataModule(str(ssv1.data_dir), annotation_dir=str(ann), **SMALL)
    with pytest.raises(AnnotationError, match=r"v1-train\.csv:2.*from top to bottom"):
        dm.build_records("train")


def test_kinetics_bad_rows(tmp_path) -> None:
    header = "label,youtube_id,time_start,time_end,split"
    fx.write_text(tmp_path / "train.csv", [header, "abseiling,abc,1,11,train",
                                           "abseiling,def,one,11,train"])
    dm = KineticsDataModule(str(tmp_path), **SMALL)
    with pytest.raises(AnnotationError, match=r"train\.csv:3: time_start"):
        dm.build_records("train")
    # an unquoted label with a comma shifts the columns
    fx.write_text(tmp_path / "train.csv", [header, "tying bow tie, or knot,abc,1,11,train"])
    with pytest.raises(AnnotationError, match=r"train\.csv:2: 6 fields"):
        _ = KineticsDataModule(str(tmp_path), **SMALL).classes
    fx.write_text(tmp_path / "train.csv", ["label,id,start", "a,b,1"])
    with pytest.raises(AnnotationError, match=r"train\.csv:1: header .* lacks"):
        _ = KineticsDataModule(str(tmp_path), **SMALL).classes


def test_kinetics_csv_as_published_blank_short_and_quoted_rows(tmp_path) -> None:
    """The columnar read keeps the row reader's rules: blank rows (empty, spaces, only
    commas) skipped, short rows filled, quoted labels with commas, decimal times cut, an
    empty youtube_id named by its line."""
    for name in ("abc_000001_000011", "def_000002_000012"):
        (tmp_path / f"{name}.mp4").touch()
    (tmp_path / "ghi.mp4").touch()  # untrimmed source
    fx.write_text(tmp_path / "train.csv", [
        "label,youtube_id,time_start,time_end,split,is_cc", "", " ",
        'abseiling,abc,1,11,train,0', ',,,,,', '"tying bow tie, or knot",def,2.9,12.2,train',
        'abseiling,ghi,3,13'])
    dm = KineticsDataModule(str(tmp_path), **SMALL)
    assert dm.classes == ["abseiling", "tying bow tie, or knot"]
    records = dm.build_records("train")
    assert [(Path(r.path).name, r.label, r.start_sec, r.end_sec) for r in records] == [
        ("abc_000001_000011.mp4", 0, None, None), ("def_000002_000012.mp4", 1, None, None),
        ("ghi.mp4", 0, 3.0, 13.0)]
    fx.write_text(tmp_path / "train.csv", ["label,youtube_id,time_start,time_end",
                                           "abseiling,abc,1,11", "abseiling,,1,11"])
    with pytest.raises(AnnotationError, match=r"train\.csv:3: empty youtube_id"):
        KineticsDataModule(str(tmp_path), **SMALL).build_records("train")
    fx.write_text(tmp_path / "train.csv", ["label,youtube_id,time_start,time_end",
                                           "abseiling,abc,1,11", "abseiling,def,2,nan"])
    with pytest.raises(AnnotationError, match=r"train\.csv:3: time_start.*'nan'"):
        KineticsDataModule(str(tmp_path), **SMALL).build_records("train")


def test_hmdb_bad_mark_and_missing_split_files(tmp_path) -> None:
    fx.write_text(tmp_path / "run_test_split1.txt", ["a.avi 1 ", "b.avi 7 "])
    dm = HMDB51DataModule(str(tmp_path), **SMALL)
    assert dm.classes == ["run"]
    with pytest.raises(AnnotationError, match=r"run_test_split1\.txt:2: expected"):
        dm.build_records("train")
    with pytest.raises(AnnotationError, match="_test_split2.txt.*run_test_split1.txt"):
        _ = HMDB51DataModule(str(tmp_path), split=2, **SMALL).classes


def test_ssv2_invalid_json_names_line(tmp_path) -> None:
    (tmp_path / "labels.json").write_text('{\n "Holding something": "0",\n oops\n}')
    with pytest.raises(AnnotationError, match=r"labels\.json:3: invalid JSON"):
        _ = SomethingSomethingV2DataModule(str(tmp_path), **SMALL).classes


def test_empty_split_is_an_error(ucf, tmp_path) -> None:
    ann = copy_annotations(ucf.annotation_dir, tmp_path / "ann")
    fx.write_text(ann / "ucfTrainTestlist" / "testlist01.txt", [""], newline="\r\n")
    dm = UCF101DataModule(str(ucf.data_dir), annotation_dir=str(ann), **SMALL)
    with pytest.raises(ValueError, match="'test' split is empty"):
        dm.setup("test")
    # every listed video missing: empty too, and the message says where it looked
    dm = UCF101DataModule(str(tmp_path / "no_videos"), annotation_dir=str(ann), **SMALL)
    (tmp_path / "no_videos").mkdir()
    with pytest.warns(UserWarning, match="6 of 6 train videos"), \
            pytest.raises(ValueError, match="none found under .*no_videos"):
        dm.setup("fit")


def test_on_missing_raise(ssv1) -> None:
    dm = SomethingSomethingV1DataModule(str(ssv1.data_dir), annotation_dir=str(ssv1.annotation_dir),
                                        on_missing="raise", **SMALL)
    with pytest.raises(FileNotFoundError, match="999999"):
        dm.build_records("val")


@pytest.mark.parametrize("kwargs", [
    {"split": 4}, {"classes_subset": 0}, {"max_per_class": 0},
    {"max_per_class": {"training": 3}}, {"on_missing": "ignore"}, {"flip_label_map": "mirror"},
])
def test_bad_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        UCF101DataModule("/data/ucf101", **{**SMALL, **kwargs})


def test_subset_names_unknown_class(ucf) -> None:
    dm = UCF101DataModule(str(ucf.data_dir), annotation_dir=str(ucf.annotation_dir),
                          classes_subset=["Basketball", "Bowling"], **SMALL)
    with pytest.raises(AnnotationError, match="Bowling"):
        _ = dm.classes


def test_folder_without_class_folders(tmp_path) -> None:
    with pytest.raises(AnnotationError, match="no class folders"):
        _ = VideoFolderDataModule(str(tmp_path), **SMALL).classes


def test_folder_train_without_val(tmp_path) -> None:
    fx.tiny_video(tmp_path / "train" / "cat" / "a.mp4")
    with pytest.raises(AnnotationError, match="no val/"):
        _ = VideoFolderDataModule(str(tmp_path), **SMALL).classes


def test_listed_path_is_that_file_or_missing(tmp_path) -> None:
    """Acceptance: ``split_files`` naming ``cat/000.mp4`` whose file is gone reports it missing,
    although ``dog/000.mp4`` exists (numbered names repeat across class folders)."""
    for cls in ("cat", "dog"):
        for name in ("000", "001"):
            fx.tiny_video(tmp_path / cls / f"{name}.mp4")
    (tmp_path / "cat" / "000.mp4").unlink()
    fx.write_text(tmp_path / "train.txt", ["cat/000.mp4", "cat/001.mp4", "dog/000.mp4"])
    fx.write_text(tmp_path / "val.txt", ["dog/001.mp4"])
    dm = VideoFolderDataModule(str(tmp_path), split_files={"train": "train.txt",
                                                           "val": "val.txt"}, **SMALL)
    with pytest.warns(UserWarning, match=r"1 of 3 train videos not found.*cat/000\.mp4"):
        records = dm.build_records("train")
    assert [(Path(r.path).parent.name, Path(r.path).name, r.label) for r in records] == [
        ("cat", "001.mp4", 0), ("dog", "000.mp4", 1)]
    assert dm.missing["train"] == ["cat/000.mp4"]


def test_listed_path_below_an_archive_folder(tmp_path) -> None:
    """UCF101's relative paths are honoured one folder down (``data_dir`` = the parent of
    ``UCF-101/``), and only with their class folder."""
    built = fx.build_ucf101(tmp_path)
    listed = built.data_dir / "Basketball" / "v_Basketball_g02_c01.avi"
    stray = built.data_dir / "ApplyEyeMakeup" / listed.name
    shutil.move(listed, stray)
    dm = UCF101DataModule(str(tmp_path), annotation_dir=str(built.annotation_dir), **SMALL)
    with pytest.warns(UserWarning, match="1 of .* train videos not found"):
        records = dm.build_records("train")
    assert dm.missing["train"] == ["Basketball/v_Basketball_g02_c01.avi"]
    assert str(stray) not in {r.path for r in records}
    assert all(Path(r.path).is_relative_to(built.data_dir) for r in records)


def test_bare_name_found_twice_is_reported(tmp_path) -> None:
    """By-name lookup (SSv2 ids) never picks one of two same-named files silently."""
    built = fx.build_ssv2(tmp_path)
    first = built.data_dir / "1.webm"
    for copy in ("x", "y"):
        (built.data_dir / copy).mkdir()
        shutil.copy(first, built.data_dir / copy / "1.webm")
    first.unlink()
    dm = SomethingSomethingV2DataModule(str(built.data_dir), **SMALL,
                                        annotation_dir=str(built.annotation_dir))
    with pytest.warns(UserWarning, match="1 train names found in more than one place"):
        records = dm.build_records("train")
    assert len(records) == built.counts["train"] - 1
    assert all(Path(r.path).name != "1.webm" for r in records)
    assert set(dm.ambiguous["train"]["1.webm"]) == {str(built.data_dir / c / "1.webm")
                                                    for c in ("x", "y")}


def test_empty_class_folder_is_an_error(tmp_path) -> None:
    fx.tiny_video(tmp_path / "cat" / "a.mp4")
    fx.tiny_video(tmp_path / "cat" / "b.mp4")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "notes.txt").write_text("no videos here")
    with pytest.raises(AnnotationError, match=r"hold no videos.*'dog'"):
        _ = VideoFolderDataModule(str(tmp_path), **SMALL).classes
