"""Run one function over many videos in worker processes, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

__all__ = ["map_with_progress"]

T = TypeVar("T")
R = TypeVar("R")


def map_with_progress(fn: Callable[[T], R], items: Sequence[T], *, workers: int = 1,
                      description: str = "", progress: bool = True) -> Iterator[R]:
    """``fn(item)`` for every item, as they finish (in order when ``workers <= 1``).

    ``fn`` must be a module-level function (it is pickled to the worker processes) and should
    catch its own per-item errors: one bad video must not stop the batch.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(description, total=len(items))
        if workers <= 1:
            for item in items:
                yield fn(item)
                bar.advance(task)
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for future in as_completed([pool.submit(fn, item) for item in items]):
                yield future.result()
                bar.advance(task)
