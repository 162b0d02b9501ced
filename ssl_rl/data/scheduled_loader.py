"""One training batch per step holding only the tasks the schedule trains at that step."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from torch import Tensor
from torch.utils.data import DataLoader


class ScheduledTaskLoader:
    """Yields ``{task: batch}`` for the tasks active at each step, from one loader per task.

    Inactive tasks are not pulled, so S&T decodes no videos during its spatial phase.
    Lightning consumes batches in order, so yield ``j`` trains at step ``start + j``.
    """

    def __init__(
        self,
        loaders: Mapping[str, DataLoader],
        active_tasks: Callable[[int], tuple[str, ...]],
        start_step: Callable[[], int],
        accumulate_grad_batches: int = 1,
    ) -> None:
        self.loaders = dict(loaders)
        self.active_tasks = active_tasks
        self.start_step = start_step
        self.accumulate_grad_batches = accumulate_grad_batches

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        start = self.start_step()
        iterators = {task: iter(loader) for task, loader in self.loaders.items()}
        batch_index = 0
        while True:
            step = start + batch_index // self.accumulate_grad_batches
            batch: dict[str, Tensor] = {}
            for task in self.active_tasks(step):
                if task in iterators:
                    batch[task] = next(iterators[task])
            if not batch:
                raise RuntimeError(f"no loader for the tasks active at step {step}")
            yield batch
            batch_index += 1
