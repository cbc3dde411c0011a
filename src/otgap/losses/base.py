"""What the Edge-of-Stability stage needs to know about a loss besides its value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Loss:
    """``fn(outputs, labels)`` returns a scalar; ``separable`` says it is a mean over samples.

    Only a separable loss may be evaluated on chunks of samples whose results are recombined by
    sample-count weights; everything in the stage that chunks asks :meth:`chunk_size` first.
    """

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    separable: bool = True

    def __call__(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.fn(outputs, labels)

    def chunk_size(self, wanted: int | None, n: int) -> int:
        """Samples per chunk: ``wanted`` for a separable loss, all ``n`` samples otherwise."""
        if not self.separable or wanted is None:
            return max(n, 1)
        return max(int(wanted), 1)
