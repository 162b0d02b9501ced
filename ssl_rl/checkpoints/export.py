"""``python -m ssl_rl.checkpoints.export <run dir or .ckpt> --out trunk.safetensors``: a
trunk to share.

Writes the trunk's weights (``--heads``, ``--psi``: also the heads and Ψ) as safetensors with
the architecture, experiment, tasks, steps, Ψ hashes and project version in the header (see
:mod:`ssl_rl.checkpoints.trunk_file`). ``finetune.py ckpt=`` and ``train.py init_from=`` read it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ssl_rl.checkpoints.trunk_file import TRUNK_PREFIX, write_trunk_file
from ssl_rl.eval.pretrained import read_checkpoint, resolve_pretrained_path
from ssl_rl.run.errors import ConfigRefused


def export(
    source: str | Path,
    out: str | Path,
    heads: bool = False,
    psi: bool = False,
    trust: bool = False,
) -> dict[str, str]:
    """Export the trunk of ``source`` (a ``train.py`` checkpoint or run directory) to ``out``;
    return the header metadata written."""
    path = resolve_pretrained_path(source, key="source")
    checkpoint, state = read_checkpoint(path, trust=trust)
    if checkpoint.get("format") == "safetensors":
        raise ConfigRefused(f"{path}: already an exported trunk")
    if not any(k.startswith(TRUNK_PREFIX) for k in state):
        raise ConfigRefused(f"{path}: holds no '{TRUNK_PREFIX}*' tensors to export")
    if not checkpoint.get("trunk_config"):
        raise ConfigRefused(
            f"{path}: records no trunk_config (written before it was saved), so the exported "
            "file could not say its architecture"
        )
    return write_trunk_file(Path(out), checkpoint, heads=heads, psi=psi)


def main(argv: Sequence[str] | None = None) -> int:
    prog = "python -m ssl_rl.checkpoints.export"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("source", help="a train.py run directory or checkpoint (.ckpt)")
    parser.add_argument("--out", required=True, help="the .safetensors file to write")
    parser.add_argument("--heads", action="store_true", help="also the ordering heads")
    parser.add_argument("--psi", action="store_true", help="also each task's Ψ")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="read an older checkpoint of your own with the full unpickler (never a foreign one)",
    )
    args = parser.parse_args(argv)
    try:
        metadata = export(args.source, args.out, args.heads, args.psi, args.trust_checkpoint)
    except (ConfigRefused, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}; its header:")
    for key, value in metadata.items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
