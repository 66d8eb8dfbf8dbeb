"""Class subsets and per-class caps: Mini-Kinetics-200 and Mini-SSV2 in miniature."""

from __future__ import annotations

import warnings

import pytest

from datamodules import KineticsDataModule, SomethingSomethingV2DataModule, UCF101DataModule
from datamodules.annotations import derive_flip_label_map
from tests import fixtures_datasets as fx
from tests.test_datasets_formats import SMALL


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory: pytest.TempPathFactory) -> fx.Fixture:
    return fx.build_kinetics(tmp_path_factory.mktemp("kinetics"))


@pytest.fixture(scope="module")
def ssv2(tmp_path_factory: pytest.TempPathFactory) -> fx.Fixture:
    return fx.build_ssv2(tmp_path_factory.mktemp("ssv2"))


def kinetics_dm(f: fx.Fixture, **kwargs) -> KineticsDataModule:
    return KineticsDataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir),
                              **{**SMALL, **kwargs})


def test_subset_by_names_keeps_dataset_order_and_relabels(kinetics) -> None:
    dm = kinetics_dm(kinetics, classes_subset=["tying bow tie, or knot", "abseiling"])
    assert dm.classes == ["abseiling", "tying bow tie, or knot"]  # dataset order, not listed
    records = dm.build_records("train")
    assert len(records) == 4
    assert {r.label for r in records} == {0, 1}
    for r in records:
        assert dm.classes[r.label] in r.path


def test_mini_kinetics_style_class_file_and_caps(kinetics, tmp_path) -> None:
    class_file = tmp_path / "mini_classes.txt"
    fx.write_text(class_file, ['"massaging person\'s head"', "", "Abseiling  "],
                  newline="\r\n")
    dm = kinetics_dm(kinetics, classes_subset=str(class_file),
                     max_per_class={"train": 1, "val": 1})
    assert dm.classes == ["abseiling", "massaging person's head"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm.setup()
    assert len(dm.datasets["train"].records) == 2
    assert sorted(r.label for r in dm.datasets["train"].records) == [0, 1]
    assert dm.datasets["test"].records == dm.datasets["val"].records  # test reads val
    again = kinetics_dm(kinetics, classes_subset=str(class_file), max_per_class=1)
    assert again.build_records("train") == dm.datasets["train"].records  # seeded


def test_mini_ssv2_style_random_half_is_seeded(ssv2) -> None:
    def dm(seed: int) -> SomethingSomethingV2DataModule:
        return SomethingSomethingV2DataModule(str(ssv2.data_dir),
                                              annotation_dir=str(ssv2.annotation_dir),
                                              classes_subset=2, subset_seed=seed, **SMALL)

    picks = {seed: tuple(dm(seed).classes) for seed in range(6)}
    assert all(len(p) == 2 for p in picks.values())
    assert dm(0).classes == list(picks[0])  # same seed, same half
    assert len(set(picks.values())) > 1  # the seed matters
    for p in picks.values():  # the dataset's order is kept
        assert list(p) == [c for c in fx.SS_CLASSES if c in p]
    records = dm(0).build_records("train")
    assert len(records) == 4 and {r.label for r in records} == {0, 1}


def test_max_per_class_for_every_split(tmp_path) -> None:
    f = fx.build_ucf101(tmp_path)
    dm = UCF101DataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir),
                          max_per_class=1, **SMALL)
    records = dm.build_records("train")
    assert sorted(r.label for r in records) == [0, 1, 2]


def test_derive_flip_label_map() -> None:
    classes = ["Turning the camera left while filming something",
               "Pushing something from left to right", "Holding something",
               "Pushing something from right to left",
               "Turning the camera right while filming something",
               "Moving something left"]  # no mirrored partner: left alone
    assert derive_flip_label_map(classes) == {0: 4, 4: 0, 1: 3, 3: 1}
