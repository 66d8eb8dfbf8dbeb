"""Training randomness as a function of (seed, epoch, sample index), never of the process.

Every random draw of a training sample (its frame indices, crop, flip, …) comes from a
``torch.Generator`` seeded from ``(seed, epoch, index)``, and the order of the samples from one
seeded from ``(seed, epoch)``. A batch therefore does not depend on ``num_workers``, on how many
DDP ranks share the epoch (each sample is drawn the same wherever it is loaded), nor on a resume.

The epoch reaches the workers inside the keys the sampler yields (:class:`SampleKey`): persistent
workers hold copies of the dataset that never see ``set_epoch``, but they see every key.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.data import DistributedSampler

__all__ = ["EpochSampler", "SampleKey", "default_seed", "derived_generator"]


def default_seed() -> int:
    """The run's seed: Lightning's ``seed_everything`` value (``PL_GLOBAL_SEED``), else 0."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def derived_generator(*parts: int | str) -> torch.Generator:
    """A CPU generator seeded from ``parts`` (e.g. ``seed, epoch, index``) by a 64-bit hash.

    A hash, not arithmetic such as ``seed + epoch * N + index``: nearby keys give unrelated
    streams, and no two keys share a seed by construction.
    """
    text = "/".join(str(p) for p in parts).encode()
    value = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
    generator = torch.Generator()
    generator.manual_seed(value)
    return generator


class SampleKey(NamedTuple):
    """What the training sampler hands the dataset: which sample, in which epoch, of which run."""

    index: int
    epoch: int
    seed: int

    def generator(self, position: int | None = None) -> torch.Generator:
        """The sample's generator (``position``: the record actually read, default ``index``)."""
        return derived_generator(self.seed, self.epoch, self.index if position is None
                                 else position)


class EpochSampler(DistributedSampler):
    """Yields a :class:`SampleKey` for each of ``num_samples`` samples, in an order that
    depends only on ``(seed, epoch)`` (shuffled) or in index order; under DDP, rank ``r`` of
    ``num_replicas`` takes the keys ``r, r + W, …`` of that order (padded with its first keys to
    a multiple of ``W``, as ``torch.utils.data.DistributedSampler`` pads).

    It is a ``DistributedSampler`` so that Lightning uses it as it is under DDP. Lightning
    replaces any other sampler by its ``DistributedSamplerWrapper``, whose iterator is a plain
    generator that torchdata's ``StatefulDataLoader`` cannot save: a resumed loader then
    fast-forwards a list that the wrapper builds when the iterator is made — before Lightning's
    ``set_epoch`` of the resumed epoch — so a run resumed mid-epoch ``e > 0`` went on with epoch
    0's keys (``tests/test_ddp_resume.py``). This sampler's iterator saves its epoch and
    position instead, on every rank.

    Lightning calls ``set_epoch`` before every epoch. The order is a pure function of the
    epoch, and each key carries its epoch, so a sample is drawn the same on any rank, in any
    worker and after a resume.

    Args:
        num_samples: dataset length.
        shuffle: a new permutation each epoch (else ``0 … num_samples - 1``).
        seed: the run's seed (``None``: :func:`default_seed`).
        num_replicas / rank: the DDP world size and this process's global rank (the
            datamodules pass their trainer's).
    """

    def __init__(self, num_samples: int, *, shuffle: bool = True, seed: int | None = None,
                 num_replicas: int = 1, rank: int = 0) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        # DistributedSampler's own attributes (num_samples: per rank, total_size: padded)
        super().__init__(range(num_samples), num_replicas=num_replicas, rank=rank,
                         shuffle=shuffle, seed=default_seed() if seed is None else int(seed))
        self.dataset_size = num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int) -> list[int]:
        """The sample indices of ``epoch`` over all ranks, in the order they are dealt."""
        if not self.shuffle:
            return list(range(self.dataset_size))
        generator = derived_generator(self.seed, epoch, "order")
        return torch.randperm(self.dataset_size, generator=generator).tolist()

    def rank_order(self, epoch: int) -> list[int]:
        """This rank's sample indices of ``epoch``, in the order they are yielded."""
        order = self.order(epoch)
        padding = self.total_size - len(order)
        order += (order * math.ceil(padding / len(order)))[:padding]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> _EpochIterator:
        return _EpochIterator(self)


class _EpochIterator(Iterator[SampleKey]):
    """One epoch of an :class:`EpochSampler`, with the state torchdata's ``StatefulDataLoader``
    saves in a checkpoint: the epoch and how many keys were yielded.

    The epoch is read at the first key, not when the iterator is made: Lightning makes the
    first iterator of a fit before it calls ``set_epoch``. A loaded state pins its epoch and
    position (mid-epoch resume), unless that epoch was already finished (a checkpoint at an
    epoch's end): then the next epoch starts afresh.
    """

    def __init__(self, sampler: EpochSampler) -> None:
        self.sampler = sampler
        self.epoch: int | None = None
        self.order: list[int] = []
        self.yielded = 0

    def _pin(self, epoch: int) -> None:
        self.epoch, self.order = epoch, self.sampler.rank_order(epoch)

    def __next__(self) -> SampleKey:
        if self.epoch is None:
            self._pin(self.sampler.epoch)
        if self.yielded >= len(self.order):
            raise StopIteration
        index = self.order[self.yielded]
        self.yielded += 1
        return SampleKey(index, self.epoch, self.sampler.seed)

    def state_dict(self) -> dict[str, int]:
        epoch = self.sampler.epoch if self.epoch is None else self.epoch
        return {"epoch": epoch, "yielded": self.yielded}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        if int(state_dict["yielded"]) >= len(self.sampler):
            return
        self._pin(int(state_dict["epoch"]))
        self.yielded = int(state_dict["yielded"])
