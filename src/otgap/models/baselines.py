"""Parameter-free reference predictors for the sequence benchmark."""

from __future__ import annotations

import torch

from otgap.models.sequence import SequenceModel, carry_forward


class LastObservation(SequenceModel):
    """Predict the most recent observed state (a zero-order hold).

    Any model worth its parameters must beat it on interpolation; the trainer skips training it.
    ``hidden`` is accepted and ignored so that every registry entry takes the same keyword.
    """

    is_baseline = True

    def __init__(self, hidden: int | None = None, state_dim: int = 2) -> None:
        super().__init__(state_dim)
        del hidden

    def _predict(self, t: torch.Tensor, y: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        last = y[:, 0]
        out = [last]
        for i in range(1, y.shape[1]):
            out.append(last)
            last = carry_forward(obs[:, i], y[:, i], last)
        return torch.stack(out, dim=1)
