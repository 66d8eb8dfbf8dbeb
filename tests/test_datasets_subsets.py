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


# ---- the unified-analysis authors' published mini class lists (datamodules/class_lists) -------
def test_packaged_mini_class_lists_load_and_match_the_published_datasets(tmp_path) -> None:
    from torchvision.models.video import R3D_18_Weights

    from datamodules.class_lists import PACKAGED_CLASS_LISTS, packaged_class_list

    assert sorted(PACKAGED_CLASS_LISTS) == ["mini_kinetics400", "mini_ssv2"]
    kinetics = packaged_class_list("mini_kinetics400")
    ssv2 = packaged_class_list("mini_ssv2")
    # half of each dataset, each name once, written as the datasets' class lists write them
    assert len(kinetics) == len(set(kinetics)) == 200
    assert len(ssv2) == len(set(ssv2)) == 87
    for name in kinetics + ssv2:
        assert name and name == name.strip() and "[" not in name and "'." not in name
    # Kinetics-400's own class list, as torchvision publishes it with its video models
    k400 = R3D_18_Weights.KINETICS400_V1.meta["categories"]
    assert set(kinetics) <= set(k400)
    # Something-Something v2 class names have no brackets and start with a capital
    assert all(name[0].isupper() for name in ssv2)
    with pytest.raises(KeyError, match="mini_ssv2"):
        packaged_class_list("mini_ssv1")

    # a datamodule selects a list by name; Kinetics' class list read from its train CSV
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    rows = ["label,youtube_id,time_start,time_end,split"]
    rows += [f'"{name}",id{i:03d},0,10,train' for i, name in enumerate(k400)]
    (annotations / "train.csv").write_text("\n".join(rows) + "\n")
    dm = KineticsDataModule(str(tmp_path / "videos"), annotation_dir=str(annotations),
                            classes_subset="mini_kinetics400")
    assert dm.num_classes == 200 and dm.classes == sorted(kinetics)
