"""Third-party messages every run printed that say nothing about the run, filtered by message
and module (or logger), so that any other warning still shows. Installed by ``train.py`` and
``finetune.py`` (:func:`quiet_known_noise`); each entry says why it is noise.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightning_fabric.utilities.warnings import PossibleUserWarning

# warnings.filterwarnings(message=, category=, module=): regexes matched from the start.
KNOWN_WARNINGS: list[tuple[str, type[Warning], str]] = [
    # Lightning's own pytree helper builds torch's deprecated LeafSpec (torch >= 2.10); nothing
    # in this project uses it, and only a Lightning release can change it.
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"pytorch_lightning\.utilities\._pytree",
    ),
    # Fine-tuning on the small demo sets: an epoch is shorter than the logging interval, but
    # runs are step-based over many epochs and Lightning counts logging steps across them.
    (
        r"The number of training batches \(\d+\) is smaller than the logging interval",
        PossibleUserWarning,
        r"pytorch_lightning\.loops\.fit_loop",
    ),
]

# While a run resumes: Lightning's notes on the checkpoint directory that a resume makes true
# by design. In place (resume=, a requeued job) the directory holds the checkpoint resumed
# from; ckpt_path= continues into a new directory, and no best-model ranking (a monitor) is
# configured that could be lost there.
_CHECKPOINT_MODULE = r"pytorch_lightning\.callbacks\.model_checkpoint"
IN_PLACE_RESUME_WARNINGS: list[tuple[str, type[Warning], str]] = [
    (r"Checkpoint directory .* exists and is not empty", UserWarning, _CHECKPOINT_MODULE),
]
NEW_DIRECTORY_RESUME_WARNINGS: list[tuple[str, type[Warning], str]] = [
    (r"The dirpath has changed from", UserWarning, _CHECKPOINT_MODULE),
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
def quiet_resume(ckpt_path: str | None, checkpoint_dir: Path) -> Iterator[None]:
    """Around a fit from ``ckpt_path`` (None: a new run, nothing dropped) that saves into
    ``checkpoint_dir``: drop the resume warnings that apply; the filters are restored after."""
    known: list[tuple[str, type[Warning], str]] = []
    if ckpt_path is not None:
        in_place = Path(ckpt_path).resolve().parent == checkpoint_dir.resolve()
        known = IN_PLACE_RESUME_WARNINGS if in_place else NEW_DIRECTORY_RESUME_WARNINGS
    with warnings.catch_warnings():
        for message, category, module in known:
            warnings.filterwarnings("ignore", message, category, module)
        yield
