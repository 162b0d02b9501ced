"""How the ranks of a distributed run share the policy's measurements.

The episode logic calls these hooks at the points where ranks must agree; the defaults are a
single process (identity), so the logic runs and is tested without any distributed setup.
"""

from __future__ import annotations

from torch import Tensor


class Communicator:
    """A single process: broadcasting and gathering change nothing, ranks always agree."""

    def broadcast(self, tensor: Tensor) -> Tensor:
        """Rank 0's ``tensor`` on every rank (the state s, so all ranks act on one s)."""
        return tensor

    def gather(self, values: Tensor) -> Tensor:
        """Every rank's 1-D ``values`` (draws, actions), concatenated on the CPU."""
        return values

    def agree(self, fingerprint: Tensor) -> bool:
        """Whether every rank holds the same 1-D ``fingerprint``."""
        return True
