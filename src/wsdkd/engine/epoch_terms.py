"""Per-epoch means of the (sum, count) terms a step reports (``distill/diagnostics.py``), pooled over DDP ranks."""

from __future__ import annotations

import torch

from . import distributed

Terms = dict[str, tuple[float, float]]


def batch_mean(name: str, value: torch.Tensor, batch: int) -> Terms:
    """A per-batch scalar (a loss term), averaged over the epoch's images."""
    return {name: (float(value.detach()) * batch, float(batch))}


class EpochTerms:
    """Adds up each term's sum and count over an epoch's batches; ``means`` divides them."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, terms: dict[str, tuple[float, float]]) -> None:
        for name, (total, count) in terms.items():
            acc = self.sums.setdefault(name, [0.0, 0.0])
            acc[0] += total
            acc[1] += count

    def means(self, prefix: str) -> dict[str, float]:
        """``prefix + name`` -> mean; a term with no count in the epoch (no positive at all) is left out.

        Every rank reports the same term names (the same step runs everywhere), sorted so they pool in order.
        """
        names = sorted(self.sums)
        pooled = distributed.sum_all(*(v for name in names for v in self.sums[name]))
        return {f"{prefix}{name}": pooled[2 * i] / pooled[2 * i + 1]
                for i, name in enumerate(names) if pooled[2 * i + 1] > 0}
