"""A trainer's curves as one PNG beside dvclive's files: what the Snakemake report shows of training.

dvclive's TSVs are what ``dvc plots`` draws; a report needs an image, and a picture of the run is also the
quickest look at whether it learnt. Left panel: the training loss and, when there is a validation split, its
loss; right panel: the validation mAP (%) of the classifiers (absent for feature matching, which has no logits).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..pipeline.atomic import atomic_path

CURVES_FILE = "curves.png"
_PANEL_INCHES, _DPI = (5.0, 3.5), 100


def plot_training_curves(history: list[dict], path: str | Path, title: str) -> None:
    """PNG of ``history`` (one record per epoch, as :func:`wsdkd.engine.loop.fit` returns it) at ``path``."""
    panels = [("loss", ("train/loss", "val/loss"))]  # always drawn: every trainer has a loss
    if any("val/mAP" in record for record in history):
        panels.append(("val mAP (%)", ("val/mAP",)))
    fig = Figure(figsize=(_PANEL_INCHES[0] * len(panels), _PANEL_INCHES[1]), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    for ax, (label, keys) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for key in keys:
            points = [(record["epoch"], record[key]) for record in history if key in record]
            if points:
                epochs, values = zip(*points)
                ax.plot(epochs, values, marker="o", label=key)
        ax.set(xlabel="epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs, not fractions of one
        if ax.lines:
            ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
