"""A dead loader worker is reported where its loader is read, at a step boundary.

PyTorch's SIGCHLD handler raises the worker's death in the main process at whatever line it
is running: in the middle of an optimiser step as readily as between steps, so neither a
checkpoint of that moment nor going on with new workers would be sound. While training, the
handler's error is deferred: the loader notices the dead worker itself when it next waits for
its batch (within ``MP_STATUS_CHECK_INTERVAL``, 5 s) and raises there, where the state is
whole and the position of every sampler known.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader
from torch.utils.data._utils import signal_handling

log = logging.getLogger(__name__)

_DEATH_MESSAGES = ("DataLoader worker (pid", "Pin memory thread exited unexpectedly")


def is_worker_death(error: BaseException) -> bool:
    """Whether ``error``, raised by reading a DataLoader, reports a worker (or its pin
    thread) gone: PyTorch's message, or the broken connection of a worker killed while it
    handed over a batch."""
    message = str(error)
    if "in DataLoader worker process" in message:
        return False  # the dataset's own error, raised in a worker and handed over
    if isinstance(error, RuntimeError):
        return message.startswith(_DEATH_MESSAGES)
    return isinstance(error, (ConnectionError, EOFError))


def defer_worker_deaths() -> Callable[[], None]:
    """Wrap PyTorch's SIGCHLD handler so that a worker's death is logged, not raised at once;
    return the function that puts PyTorch's handler back."""
    if not hasattr(signal, "SIGCHLD") or threading.current_thread() is not threading.main_thread():
        return lambda: None
    signal_handling._set_SIGCHLD_handler()  # PyTorch's, installed once per process
    torch_handler = signal.getsignal(signal.SIGCHLD)
    if not callable(torch_handler):
        return lambda: None
    reported: set[str] = set()

    def handler(signum: int, frame: Any) -> None:
        try:
            torch_handler(signum, frame)
        except RuntimeError as error:
            if str(error) not in reported:  # raised again on every later SIGCHLD
                reported.add(str(error))
                log.warning("%s; its loader stops at its next batch", str(error).strip(" ."))

    def restore() -> None:
        signal.signal(signal.SIGCHLD, torch_handler)

    signal.signal(signal.SIGCHLD, handler)
    return restore


def shut_down_workers(loader: DataLoader[Any], iterator: Iterator[Any]) -> None:
    """End ``iterator``'s workers (the live ones too) so that ``iter(loader)`` starts new ones.

    A persistent-worker loader keeps its iterator and would reuse the broken one; shutting it
    down also unregisters the dead worker, which PyTorch's handler would report again.
    """
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    if getattr(loader, "_iterator", None) is iterator:
        loader._iterator = None
