"""DataLoader workers leave stop signals to the main process."""

from __future__ import annotations

import os
import signal


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn``: a worker killed by a stop signal fails the run before the main
    process can save a checkpoint at the step boundary and shut the workers down itself.

    Signals sent to the whole process group (``timeout``, Ctrl-C in a terminal) miss a worker
    in its own session; SIGINT and the SLURM / submitit warning signals are ignored for ones
    sent to every process of a job. SIGTERM sent to the worker itself still ends it: that is
    how the main process stops workers left at exit.
    """
    os.setsid()
    for name in ("SIGINT", "SIGUSR1", "SIGUSR2"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
