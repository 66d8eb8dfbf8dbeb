"""The synthetic fine-grained benchmark: real decodable files, right labels, deterministic."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from datamodules import SyntheticFineGrainedDataModule
from datamodules.synthetic import render_video, synthetic_class_names
from tests.conftest import TINY_SYNTHETIC


def decode_all(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def tiny(synthetic_root) -> SyntheticFineGrainedDataModule:
    dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC)
    dm.prepare_data()
    dm.setup()
    return dm


def test_class_names_say_what_separates_them() -> None:
    names = synthetic_class_names(2)
    assert len(names) == 8 == len(set(names))
    assert names[:4] == [
        "stripes-mark_top-grow",
        "stripes-mark_top-shrink",
        "stripes-mark_bottom-grow",
        "stripes-mark_bottom-shrink",
    ]


def test_groups_are_pairs_and_contexts(tiny: SyntheticFineGrainedDataModule) -> None:
    groups = tiny.class_groups
    assert groups["context:stripes"] == tiny.classes
    assert groups["detail:stripes-grow"] == ["stripes-mark_top-grow", "stripes-mark_bottom-grow"]
    assert groups["reversal:stripes-mark_top"] == ["stripes-mark_top-grow",
                                                   "stripes-mark_top-shrink"]


def test_files_decode_with_labels_from_their_class_folder(tiny) -> None:
    for split, per_class in (("train", 4), ("val", 2), ("test", 3)):
        records = tiny.datasets[split].records
        assert len(records) == per_class * tiny.num_classes
        for record in records:
            assert tiny.classes[record.label] in record.path
            frames = decode_all(record.path)
            assert frames.shape == (TINY_SYNTHETIC["frames_per_video"], 48, 48, 3)
            assert record.num_frames == frames.shape[0]


def test_generation_is_deterministic(tmp_path, tiny) -> None:
    again = SyntheticFineGrainedDataModule(data_dir=str(tmp_path), **TINY_SYNTHETIC)
    first, second = tiny.build_records("val"), again.build_records("val")
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(decode_all(a.path), decode_all(b.path))
    other = SyntheticFineGrainedDataModule(data_dir=str(tmp_path), **{**TINY_SYNTHETIC, "seed": 1})
    assert not np.array_equal(decode_all(other.build_records("val")[0].path),
                              decode_all(first[0].path))


def test_shrink_is_grow_played_backwards() -> None:
    grow = render_video("checker-mark_top-grow", np.random.default_rng(3), noise=0)
    shrink = render_video("checker-mark_top-shrink", np.random.default_rng(3), noise=0)
    np.testing.assert_array_equal(grow[::-1], shrink)
    other_mark = render_video("checker-mark_bottom-grow", np.random.default_rng(3), noise=0)
    differs = (other_mark != grow).any(-1)
    # the local detail is small: a few percent of the pixels
    assert 0 < differs.mean() < 0.05


def test_batches_have_the_documented_shapes(tiny) -> None:
    train = next(iter(tiny.train_dataloader()))
    assert train["video"].dtype == torch.uint8
    assert train["video"].shape == (4, 3, 4, 32, 32)
    assert train["label"].shape == (4,)
    val = next(iter(tiny.val_dataloader()))
    assert val["video"].shape == (4, 3, 4, 32, 32)


def test_test_views_fold_clips_and_crops(synthetic_root) -> None:
    dm = SyntheticFineGrainedDataModule(
        data_dir=str(synthetic_root), **{**TINY_SYNTHETIC, "test_clips": 2, "test_crops": 3})
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["video"].shape == (4, 6, 3, 4, 32, 32)
    assert batch["index"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("sampling", ["uniform", "dense"])
def test_both_sampling_modes(synthetic_root, sampling) -> None:
    dm = SyntheticFineGrainedDataModule(
        data_dir=str(synthetic_root), **{**TINY_SYNTHETIC, "sampling": sampling,
                                         "frame_interval": 2})
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["video"].shape == (4, 3, 4, 32, 32)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_contexts"):
        SyntheticFineGrainedDataModule(num_contexts=9)
    with pytest.raises(ValueError, match="test_crops"):
        SyntheticFineGrainedDataModule(test_crops=4)


def test_first_context_picks_other_contexts_for_a_transfer_target(tmp_path) -> None:
    source = SyntheticFineGrainedDataModule(data_dir=str(tmp_path), num_contexts=2)
    target = SyntheticFineGrainedDataModule(data_dir=str(tmp_path), num_contexts=2,
                                            first_context=2)
    assert {c.split("-")[0] for c in target.classes} == {"gradient", "rings"}
    assert not set(source.classes) & set(target.classes)
    assert source.root != target.root  # its own generated videos
    with pytest.raises(ValueError, match="first_context"):
        SyntheticFineGrainedDataModule(data_dir=str(tmp_path), num_contexts=3, first_context=2)
