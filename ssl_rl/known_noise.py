"""Third-party messages every run printed that say nothing about the run, filtered by message
and module (or logger), so that any other warning still shows. Installed by ``train.py`` and
``finetune.py`` (:func:`quiet_known_noise`); each entry says why it is noise.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# warnings.filterwarnings(message=, category=, module=): regexes matched from the start.
KNOWN_WARNINGS: list[tuple[str, type[Warning], str]] = [
    # Lightning's own pytree helper builds torch's deprecated LeafSpec (torch >= 2.10); nothing
    # in this project uses it, and only a Lightning release can change it.
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"pytorch_lightning\.utilities\._pytree",
    ),
]

# Only while a run continues from a checkpoint in its own directory (resume=, a requeued job):
# the directory holds that checkpoint, so it is not empty by design.
IN_PLACE_RESUME_WARNINGS: list[tuple[str, type[Warning], str]] = [
    (
        r"Checkpoint directory .* exists and is not empty",
        UserWarning,
        r"pytorch_lightning\.callbacks\.model_checkpoint",
    ),
]

# (logger, message prefix): log records dropped.
KNOWN_LOG_LINES: list[tuple[str, str]] = [
    # An advertisement for a cloud logger, at every Trainer construction.
    ("pytorch_lightning.utilities.rank_zero", "💡 Tip: For seamless cloud logging"),
]


class _DropPrefix(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def quiet_known_noise() -> None:
    """Install the filters (idempotent)."""
    for message, category, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, prefix in KNOWN_LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropPrefix) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropPrefix(prefix))


@contextmanager
def quiet_in_place_resume(active: bool) -> Iterator[None]:
    """While ``active`` (a run continuing in its own directory), :data:`IN_PLACE_RESUME_WARNINGS`
    are dropped; the filters are restored afterwards."""
    with warnings.catch_warnings():
        if active:
            for message, category, module in IN_PLACE_RESUME_WARNINGS:
                warnings.filterwarnings("ignore", message, category, module)
        yield
