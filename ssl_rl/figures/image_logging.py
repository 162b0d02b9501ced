"""Send one image (a matplotlib figure or a PNG file) to every logger that can show images."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from ssl_rl.figures.policy import figure_to_rgb

log = logging.getLogger(__name__)


def image_loggers(loggers: Sequence[Logger]) -> list[WandbLogger | TensorBoardLogger]:
    """The loggers ``log_figure`` writes to (W&B and TensorBoard); CSV and others have no images."""
    return [lg for lg in loggers if isinstance(lg, WandbLogger | TensorBoardLogger)]


def to_rgb_array(figure_or_png: Figure | str | Path) -> np.ndarray:
    """An (H, W, 3) uint8 array of a figure (rendered on Agg) or of a PNG file."""
    if isinstance(figure_or_png, Figure):
        return figure_to_rgb(figure_or_png)
    path = Path(figure_or_png)
    if not path.is_file():
        raise FileNotFoundError(f"image to log does not exist: {path}")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


@rank_zero_only
def log_figure(
    loggers: Sequence[Logger], key: str, figure_or_png: Figure | str | Path, step: int
) -> None:
    """Log the image under ``key`` at ``step`` to every W&B and TensorBoard logger.

    The image is rendered once and reused. Other loggers (CSV, unknown ones) are skipped. A
    logger that fails is reported as a warning and skipped: a figure is a diagnostic and must not
    end a long training run.
    """
    targets = image_loggers(loggers)
    if not targets:
        return
    rgb = to_rgb_array(figure_or_png)
    for logger in targets:
        try:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[rgb], step=step)
            else:
                logger.experiment.add_image(
                    key, rgb.transpose(2, 0, 1), global_step=step, dataformats="CHW"
                )
        except Exception:
            log.warning(
                "could not log image %r at step %d to %s; skipped",
                key,
                step,
                type(logger).__name__,
                exc_info=True,
            )
