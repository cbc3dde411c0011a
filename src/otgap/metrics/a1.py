"""Declarations about the A.1 metrics that every table, statistic and the paper read from here
(no torch import, so table and paper jobs can use them).

- ``HIGHER_IS_BETTER``: the metrics where a larger value is better (times); every other metric is
  an error, lower is better. The one place this is declared.
- ``FLOOR_OF``: the metric's floor, the TRUE trajectories' own score on the same windows (the
  rollouts' truth put through the same metric): a model cannot be expected to go below it, and
  a spread between models no larger than it says nothing.
- ``NOT_ON_CHAOTIC``: metrics left undefined (NaN) on a chaotic system, whose truth alone scores
  as much as the models' spread there (the relative period error of an aperiodic orbit).
- ``TABLE_EXCLUDED``: metrics computed but kept out of the tables, with the reason.
"""

from __future__ import annotations

HIGHER_IS_BETTER = frozenset({"vpt", "time_in_band"})

FLOOR_OF = {
    "orbit_distance": "orbit_distance_floor",
    "period_error": "period_error_floor",
    "orbit_distance_unseen": "orbit_distance_unseen_floor",
    "period_error_unseen": "period_error_unseen_floor",
}
FLOORS = frozenset(FLOOR_OF.values())

NOT_ON_CHAOTIC = frozenset(
    {"period_error", "period_error_floor", "period_error_unseen", "period_error_unseen_floor"}
)

TABLE_EXCLUDED = {
    "time_in_band": (
        "censored at the rollout's end (most models reach the censoring value) and it rewards a "
        "prediction that freezes on the attractor"
    ),
}


def lower_is_better(metric: str) -> bool:
    """Direction of ``metric`` (the declaration above)."""
    return metric not in HIGHER_IS_BETTER
