"""The last line of ``make bench-gpu``: its figures as ``key=value`` pairs, from the parts' JSON.

    python -m benchmarks.gpu_line LEVERS OVERHEAD E2E_WORKERS E2E_DEVICE

Each argument is a file whose last line is the JSON a benchmark printed (``step_levers``,
``policy_overhead --paper-shapes``, ``e2e_train`` twice). A missing or failed part gives ``nan``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def last_json(path: str) -> dict[str, Any]:
    """The last line of ``path`` that is a JSON object (other lines may follow it)."""
    try:
        lines = Path(path).read_text().strip().splitlines()
    except OSError:
        return {}
    for text in reversed(lines):
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def line(levers: dict, overhead: dict, workers: dict, device: dict) -> str:
    def number(value: Any, digits: int) -> str:
        return "nan" if value is None else f"{float(value):.{digits}f}"

    lever_ms = [v["step_ms"] for v in levers.values()]
    return " ".join(
        [
            f"e2e_steps_per_s={number(workers.get('steps_per_s'), 2)}",
            f"step_ms={number(1000 * overhead['step'] if 'step' in overhead else None, 1)}",
            f"mfu={number(workers.get('mfu'), 3)}",
            f"data_wait={number(workers.get('data_wait_fraction'), 3)}",
            f"between_steps={number(workers.get('between_steps_fraction'), 3)}",
            f"decode_device_steps_per_s={number(device.get('steps_per_s'), 2)}",
            f"policy_overhead={number(overhead.get('ratio_policy'), 4)}",
            f"best_lever_step_ms={number(min(lever_ms, default=None), 1)}",
        ]
    )


def main() -> None:
    print(line(*(last_json(path) for path in sys.argv[1:5])))


if __name__ == "__main__":
    main()
