"""One training batch per step holding only the tasks the schedule trains at that step."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader

from ssl_rl.data.worker_deaths import shut_down_workers


class ScheduledTaskLoader:
    """Yields ``{task: batch}`` for the tasks active at each step, from one loader per task.

    Inactive tasks are not pulled, so S&T decodes no videos during its spatial phase.
    Lightning consumes batches in order, so yield ``j`` trains at step ``start + j``.
    When a loader fails, ``restart(step, micro_batch, error)`` may agree to go on (a dead
    worker, see :mod:`~ssl_rl.data.worker_deaths`): it puts the samplers at that batch, the
    loaders start new workers and the batch is read again. ``wait_seconds`` adds up the time
    spent waiting for the loaders' batches (the throughput report's data wait).
    """

    def __init__(
        self,
        loaders: Mapping[str, DataLoader[object]],
        active_tasks: Callable[[int], tuple[str, ...]],
        start_step: Callable[[], int],
        accumulate_grad_batches: int = 1,
        restart: Callable[[int, int, BaseException], bool] | None = None,
    ) -> None:
        self.loaders = dict(loaders)
        self.active_tasks = active_tasks
        self.start_step = start_step
        self.accumulate_grad_batches = accumulate_grad_batches
        self.restart = restart
        self.wait_seconds = 0.0

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        start = self.start_step()
        iterators = {task: iter(loader) for task, loader in self.loaders.items()}
        batch_index = 0
        try:
            while True:
                step, micro = divmod(batch_index, self.accumulate_grad_batches)
                step += start
                batch: dict[str, Tensor] = {}
                asked = time.perf_counter()
                try:
                    for task in self.active_tasks(step):
                        if task in iterators:
                            batch[task] = next(iterators[task])
                except Exception as error:
                    if self.restart is None or not self.restart(step, micro, error):
                        raise
                    self._shut_down(iterators)
                    iterators = {task: iter(loader) for task, loader in self.loaders.items()}
                    continue
                self.wait_seconds += time.perf_counter() - asked
                if not batch:
                    raise RuntimeError(f"no loader for the tasks active at step {step}")
                yield batch
                batch_index += 1
        except Exception:
            # Workers a failed run leaves (a dead one stays registered with PyTorch's SIGCHLD
            # handler, which would raise again at every later child exit) end here.
            self._shut_down(iterators)
            raise

    def _shut_down(self, iterators: Mapping[str, Iterator[Any]]) -> None:
        for task, loader in self.loaders.items():
            shut_down_workers(loader, iterators[task])
