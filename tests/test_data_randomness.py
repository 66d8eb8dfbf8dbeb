"""Training samples are a function of (seed, epoch, index): the same batches with 0 or 2 workers,
the same sample on whichever DDP rank loads it, a new draw each epoch — with the default train
transform and with torchvision v2 transforms (``V2Transform``), which draw from the global RNG."""

from __future__ import annotations

from unittest.mock import patch

import pytest
import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.data import _set_sampler_epoch
from pytorch_lightning.utilities.data import _update_dataloader
from torch.utils.data import DistributedSampler
from torchvision.transforms import v2

from datamodules import SyntheticFineGrainedDataModule
from datamodules.randomness import EpochSampler, SampleKey
from datamodules.transforms import V2Transform
from tests.conftest import TINY_SYNTHETIC


def v2_transform() -> V2Transform:
    """torchvision v2 random transforms, which draw from torch's global RNG."""
    return V2Transform([v2.RandomResizedCrop(TINY_SYNTHETIC["train_crop_size"], scale=(0.2, 1.0)),
                        v2.ColorJitter(brightness=0.4, contrast=0.4, hue=0.1)])


# every test runs with the default transform and with torchvision v2 transforms
@pytest.fixture(params=["default", "v2"])
def datamodule(request, synthetic_root) -> SyntheticFineGrainedDataModule:
    transform = v2_transform() if request.param == "v2" else None
    dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC,
                                        train_transform=transform)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def epoch_batches(dm, epoch: int, num_workers: int, seed: int = 0) -> list[dict]:
    # a fresh copy of the datamodule, with the given number of workers
    dm = SyntheticFineGrainedDataModule(data_dir=dm.data_dir, train_transform=dm.train_transform,
                                        **{**TINY_SYNTHETIC, "num_workers": num_workers})
    dm.setup("fit")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PL_GLOBAL_SEED", str(seed))
        loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


def by_index(batches: list[dict]) -> dict[int, tuple[torch.Tensor, int]]:
    return {int(i): (b["video"][k], int(b["label"][k]))
            for b in batches for k, i in enumerate(b["index"])}


def test_batches_do_not_depend_on_num_workers(datamodule) -> None:
    zero, two = epoch_batches(datamodule, 1, 0), epoch_batches(datamodule, 1, 2)
    assert len(zero) == len(two) == 4
    for a, b in zip(zero, two, strict=True):
        assert torch.equal(a["index"], b["index"])
        assert torch.equal(a["video"], b["video"])
        assert torch.equal(a["label"], b["label"])


def test_each_epoch_and_seed_draws_anew(datamodule) -> None:
    one, two = by_index(epoch_batches(datamodule, 1, 0)), by_index(epoch_batches(datamodule, 2, 0))
    other_seed = by_index(epoch_batches(datamodule, 1, 0, seed=1))
    shared = one.keys() & two.keys()
    assert shared
    assert any(not torch.equal(one[i][0], two[i][0]) for i in shared)  # new crops and flips
    assert any(not torch.equal(one[i][0], other_seed[i][0]) for i in one.keys() & other_seed.keys())
    # the order too is a function of (seed, epoch)
    assert EpochSampler(16, seed=0).order(1) != EpochSampler(16, seed=0).order(2)
    assert EpochSampler(16, seed=0).order(1) == EpochSampler(16, seed=0).order(1)


def test_a_sample_is_the_same_on_whichever_ddp_rank_loads_it(datamodule) -> None:
    single = by_index(epoch_batches(datamodule, 3, 0))
    datamodule.num_workers = 0
    loader = datamodule.train_dataloader()
    seen: set[int] = set()
    for rank in (0, 1):
        # what train_dataloader() builds on rank `rank` of a 2-process trainer; Lightning keeps
        # a DistributedSampler as it is (tests/test_ddp_resume.py runs it under DDP)
        sampler = EpochSampler(len(loader.sampler), seed=0, num_replicas=2, rank=rank)
        assert isinstance(sampler, DistributedSampler) and len(sampler) == len(loader.sampler) // 2
        ranked = _update_dataloader(loader, sampler)
        assert type(ranked) is type(loader)
        _set_sampler_epoch(ranked, 3)
        samples = by_index(list(ranked))
        for index, (video, label) in samples.items():
            if index in single:
                assert torch.equal(video, single[index][0]) and label == single[index][1]
        seen |= samples.keys()
    assert seen & single.keys()
    assert len(seen) == len(datamodule.datasets["train"])  # the ranks split the epoch


def test_a_bare_index_keeps_the_global_generator(datamodule) -> None:
    dataset = datamodule.datasets["train"]
    key = SampleKey(index=5, epoch=2, seed=0)
    assert torch.equal(dataset[key]["video"], dataset[key]["video"])
    assert dataset[key]["index"] == 5
    torch.manual_seed(0)
    first = dataset[5]["video"]
    torch.manual_seed(0)
    assert torch.equal(first, dataset[5]["video"])


@pytest.mark.parametrize("shard", [True, False])
def test_the_train_sampler_shards_as_the_trainer_says(datamodule, shard: bool) -> None:
    """Rank 1 of 2 gets its half of the epoch, or, with ``use_distributed_sampler=False``, the
    whole epoch (Lightning then leaves sharding to the user, and so does the datamodule)."""
    trainer = pl.Trainer(accelerator="cpu", use_distributed_sampler=shard, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False)
    datamodule.trainer = trainer
    # rank 1 of a 2-process run, as the strategy would report it
    with patch.object(pl.Trainer, "world_size", 2), patch.object(pl.Trainer, "global_rank", 1):
        sampler = datamodule.train_dataloader().sampler
    size = len(datamodule.datasets["train"])
    assert (sampler.num_replicas, sampler.rank) == ((2, 1) if shard else (1, 0))
    assert len(sampler) == (size // 2 if shard else size)
