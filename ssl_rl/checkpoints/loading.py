"""Reading a checkpoint file safely: tensors and plain containers only, nothing in it runs.

Every ``.ckpt`` the project reads goes through :func:`load_checkpoint`, which uses torch's
weights-only unpickler. The project's own checkpoints hold only tensors, dicts, lists,
numbers and strings (samplers, policy, RNG state and hyperparameters are saved as such), so
no class has to be allowlisted. A file that needs any other type is refused, naming it,
before anything from it is built; ``trust_checkpoint=true`` reads one's own older checkpoints
with the full unpickler.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import torch

from ssl_rl.run.errors import ConfigRefused

# The first bytes of each format: a torch zip archive, and a safetensors header (8-byte
# little-endian length, then a JSON object).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"  # torch's legacy (non-zip) format starts with a pickle
_SAFETENSORS_MAX_HEADER = 100_000_000


class CheckpointMismatchError(ConfigRefused, RuntimeError):
    """A weights file that cannot be used as asked: unreadable, unsafe, or of another model.

    A :class:`ConfigRefused`, so ``train.py`` / ``finetune.py`` report it without a traceback;
    also a ``RuntimeError``, as it was before.
    """


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` starts like a safetensors file (a plausible JSON header length)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    length: int
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= _SAFETENSORS_MAX_HEADER


def load_checkpoint(
    path: str | Path, trust: bool = False, mmap: bool = False, context: str = ""
) -> Any:
    """``torch.load`` of ``path`` on the CPU, weights-only unless ``trust`` (one's own older
    files). A file that is not a readable checkpoint, or that needs types the safe loader
    refuses, is a :class:`CheckpointMismatchError` naming it (``context`` prefixes the message).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust, mmap=mmap)
    except pickle.UnpicklingError as error:
        # The safe unpickler also stops at bytes that are no pickle at all (a text file).
        head = _head(path)
        if trust or (head != _ZIP_MAGIC and head[:1] != _PICKLE_PROTO):
            raise _unreadable(path, error, context) from error
        raise CheckpointMismatchError(_refusal(path, context)) from None
    except Exception as error:  # torch raises several types for truncated / foreign files
        raise _unreadable(path, error, context) from error


def _refusal(path: Path, context: str) -> str:
    try:
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        types = ", ".join(names[:8]) + (f" ({len(names)} types)" if len(names) > 8 else "")
    except Exception:  # an old (non-zip) format: torch names the type only in its own error
        types = ""
    return (
        f"{context}{path}: refused: it holds {types or 'a type'} besides tensors and plain "
        "containers, which loading would have to build or run (nothing from the file was "
        "run). A checkpoint from someone else: ask for its trunk exported with "
        "`python -m ssl_rl.checkpoints.export <run> --out trunk.safetensors`. One of your own, "
        "written by an older version: pass trust_checkpoint=true (only for files you made "
        "yourself), or export it once with "
        "`python -m ssl_rl.checkpoints.export <file> --trust-checkpoint`."
    )


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(4)


def _unreadable(path: Path, error: Exception, context: str) -> CheckpointMismatchError:
    head = _head(path)
    if head != _ZIP_MAGIC and head[:1] != _PICKLE_PROTO:
        return CheckpointMismatchError(
            f"{context}{path}: neither a PyTorch checkpoint (.ckpt written by train.py) nor a "
            "safetensors file"
        )
    kind = "its zip archive" if head == _ZIP_MAGIC else "its pickle (old format)"
    # torch's first sentence says what failed; the rest is advice for other cases.
    detail = str(error).strip().split(". ")[0].splitlines()[0] if str(error).strip() else ""
    return CheckpointMismatchError(
        f"{context}{path}: a damaged or truncated PyTorch checkpoint ({kind} cannot be read: "
        f"{detail[:200] or type(error).__name__})"
    )
