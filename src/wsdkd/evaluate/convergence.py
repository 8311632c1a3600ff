"""Has validation mAP flattened? (issue 15: every row trained to convergence.)

Two checks. The *tail*: over the last ``tail`` fraction of a run's epochs, validation mAP may rise by at most
``tail_max_gain`` points, read from the per-epoch curves the trainers write with dvclive
(``<live>/plots/metrics/val/mAP.tsv``); the ``convergence`` stage plots them (reports/convergence.png). The
*longer run*: the same rows trained ``longer`` times as many epochs (both stages, each on its own full schedule)
may add at most ``longer_max_gain`` test mAP, as a mean over seeds (``wsdkd convergence``).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..pipeline.atomic import atomic_path, write_text_atomic
from ..pipeline.errors import UserError

CURVE = Path("plots") / "metrics" / "val" / "mAP.tsv"  # where dvclive writes val/mAP under a live folder
_DPI = 120


def read_curve(live_dir: Path) -> list[float]:
    """Validation mAP per epoch (epoch 1 first) from a trainer's dvclive folder."""
    path = live_dir / CURVE
    if not path.is_file():
        raise UserError(f"{path}: no validation mAP curve (train the model first)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "mAP" not in rows[0] or "step" not in rows[0]:
        raise UserError(f"{path}: expected dvclive's tab-separated columns step and mAP")
    return [float(r["mAP"]) for r in sorted(rows, key=lambda r: int(r["step"]))]


def tail_epochs(epochs: int, tail: float) -> int:
    """How many final epochs form the tail: the fraction rounded up, so a short run is never judged on none."""
    return max(1, math.ceil(tail * epochs - 1e-9))


def tail_gain(curve: list[float], tail: float) -> float:
    """What the last ``tail`` of the epochs added: the last value minus the one just before the tail."""
    k = tail_epochs(len(curve), tail)
    if k >= len(curve):
        raise UserError(f"a run of {len(curve)} epochs has no epoch before its last {k}: too short to judge")
    return curve[-1] - curve[-1 - k]


def tail_report(curves: dict[str, list[float]], cfg: dict) -> dict:
    """Per run: its epochs, last val mAP, the tail's gain and whether that is within ``cfg['tail_max_gain']``."""
    report = {}
    for name, curve in curves.items():
        k = tail_epochs(len(curve), cfg["tail"])
        # A run with no epoch before its tail (the one-epoch test runs) cannot be judged: null, not a failure.
        gain = tail_gain(curve, cfg["tail"]) if k < len(curve) else None
        report[name] = {"epochs": len(curve), "val_mAP_last": curve[-1], "tail_epochs": k, "tail_gain": gain,
                        "flat": gain < cfg["tail_max_gain"] if gain is not None else None}
    return report


def plot_curves(curves: dict[str, list[float]], report: dict, path: Path) -> None:
    """Validation mAP per epoch, one line per run, the tail of each run marked and its gain in the legend."""
    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, curve in curves.items():
        epochs = range(1, len(curve) + 1)
        k, gain = report[name]["tail_epochs"], report[name]["tail_gain"]
        tail = f"last {k} epochs {gain:+.1f}" if gain is not None else "too short to judge"
        line, = ax.plot(epochs, curve, marker="o", markersize=3, label=f"{name}: {curve[-1]:.1f} ({tail})")
        if gain is not None:
            ax.axvspan(len(curve) - k, len(curve), color=line.get_color(), alpha=0.08)
    ax.set(xlabel="epoch", ylabel="validation mAP (%)", title="Validation mAP per epoch (shaded: each run's tail)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)


def stage_epochs(params: dict, model: str) -> dict[str, int]:
    """The epochs a row of ``model`` trains for, as dotted settings (the plain student has no stage 1)."""
    epochs = {"student.epochs": params["student"]["epochs"]}
    if model != "student_wo":
        epochs["distill.features.epochs"] = params["distill"]["features"]["epochs"]
    return epochs


def longer_epochs(params: dict, longer: float) -> dict[str, int]:
    """The longer run's epochs: both stages' counts times ``longer``, rounded up (the settings to apply)."""
    return {key: math.ceil(longer * value) for key, value in stage_epochs(params, "student_w").items()}


def longer_verdict(short: list[float], long: list[float], max_gain: float) -> dict:
    """Paired by seed: the gain of the longer runs (mean, std when several) and whether its mean is below
    ``max_gain``."""
    if len(short) != len(long) or not short:
        raise ValueError(f"{len(short)} short and {len(long)} long runs: pair them by seed")
    gains = [b - a for a, b in zip(short, long)]
    return {"short": statistics.fmean(short), "long": statistics.fmean(long), "gain": statistics.fmean(gains),
            "gain_std": statistics.stdev(gains) if len(gains) > 1 else None, "per_seed": gains,
            "converged": statistics.fmean(gains) < max_gain}


def longer_markdown(verdicts: dict[str, dict], labels: dict[str, str], epochs: dict[str, tuple[dict, dict]],
                    seeds: list[int], max_gain: float) -> str:
    """The longer-run check as a table: per row its epochs, test mAP short and long, the gain and the verdict."""
    lines = ["## Does a longer run add mAP?", "",
             f"Test mAP, mean over seeds {', '.join(map(str, seeds))}; the longer run trains each stage for more "
             f"epochs on its own full schedule. Converged: the mean gain is under {max_gain:g} mAP.", "",
             "| row | epochs (stage 1 / stage 2) | short | longer | gain (per seed) | converged |",
             "|---|---|---|---|---|---|"]
    for name, v in verdicts.items():
        short, long = epochs[name]
        spread = f" ± {v['gain_std']:.1f}" if v["gain_std"] is not None else ""
        lines.append(f"| {labels[name]} | {_epochs(short)} → {_epochs(long)} | {v['short']:.1f} | {v['long']:.1f} | "
                     f"{v['gain']:+.1f}{spread} ({', '.join(f'{g:+.2f}' for g in v['per_seed'])}) | "
                     f"{'yes' if v['converged'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _epochs(settings: dict) -> str:
    return f"{settings.get('distill.features.epochs', '—')} / {settings['student.epochs']}"


def write_json(path: Path, report: dict) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
