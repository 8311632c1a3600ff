"""When a difference between two rows of a table counts (issue 15): more than twice their pooled std.

Each row is a few runs (seeds) of one setting. With n_a and n_b runs and sample variances s_a^2, s_b^2 the pooled
standard deviation is sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)); a row of one run (the teacher,
which has no seed) adds no variance and no degree of freedom. Two single runs have no spread to compare with, so
no difference between them is called significant.
"""

from __future__ import annotations

import math
import statistics

FACTOR = 2.0  # a difference counts when it exceeds FACTOR x the pooled std (the rule the tables state)


def pooled_std(a: list[float], b: list[float]) -> float | None:
    """The pooled sample standard deviation of two groups of runs, or None with no degree of freedom."""
    dof = len(a) + len(b) - 2
    if dof < 1:
        return None
    squares = sum(sum((x - statistics.fmean(g)) ** 2 for x in g) for g in (a, b))
    return math.sqrt(squares / dof)


def significant(a: list[float], b: list[float]) -> bool:
    """Whether the means of ``a`` and ``b`` differ by more than FACTOR times their pooled std."""
    spread = pooled_std(a, b)
    return spread is not None and abs(statistics.fmean(a) - statistics.fmean(b)) > FACTOR * spread
