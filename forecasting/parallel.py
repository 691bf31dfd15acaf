"""The one way forecasting spreads work over cores, for the engine and for any baseline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")


def map_in_processes(fn: Callable[[Task], Result], tasks: list[Task], workers: int) -> Iterator[Result]:
    """`fn` over `tasks`, results in task order: in this process when there is one worker or one task
    (no pool start-up cost, easy to debug), otherwise over a pool of `workers` processes."""
    if workers == 1 or len(tasks) <= 1:
        yield from map(fn, tasks)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, tasks)
