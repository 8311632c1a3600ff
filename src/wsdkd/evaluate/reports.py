"""The evaluation stage: score each model's predictions and write the files people read.

``<prefix>_metrics.json`` (DVC metrics: per model only the numbers compared across runs, the students under the
short names of compared.py, wo and w), ``<prefix>_evaluation.json`` (everything: the dataset measured, each model's
description and every headline number), ``<prefix>_per_class.md``, ``<prefix>_pr.png`` and ``<prefix>_plots/``
(the curves as data, plot_data.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..pipeline.atomic import write_text_atomic
from .compared import metrics_name, model_metrics
from .metrics import threshold_grid
from .plot_data import write_plot_data
from .predictions import read_predictions
from .scoring import evaluate, per_class_markdown, plot_precision_recall

log = logging.getLogger(__name__)

DESCRIPTION_FILE = "model.json"


def evaluate_folder(folder: Path, cfg: dict):
    """Headline numbers, per-class table and test predictions of a model folder's ``predictions_{val,test}``,
    scored with the ``evaluate`` params ``cfg``."""
    test = read_predictions(folder / "predictions_test.parquet")
    val = read_predictions(folder / "predictions_val.parquet")
    headline, table = evaluate(test, val, threshold=cfg["threshold"], top_k=cfg["top_k"],
                               top_k_min_score=cfg["top_k_min_score"], grid=threshold_grid(*cfg["threshold_grid"]))
    return headline, table, test


def report_paths(prefix: str | Path) -> dict[str, Path]:
    """What the evaluation writes for ``prefix`` (dvc.yaml's evaluate stage lists the same names)."""
    return {name: Path(f"{prefix}_{suffix}") for name, suffix in (
        ("metrics", "metrics.json"), ("evaluation", "evaluation.json"), ("table", "per_class.md"),
        ("plot", "pr.png"), ("plot_data", "plots"))}


def evaluate_models(models: dict[str, Path], cfg: dict, dataset_dir: Path, prefix: str | Path) -> dict:
    """``models`` maps a report name to a model folder holding ``predictions_{val,test}.parquet``; writes
    :func:`report_paths` of ``prefix`` and returns the full evaluation report."""
    paths = report_paths(prefix)
    dataset = json.loads((dataset_dir / "classes.json").read_text())
    report: dict = {"dataset": {"source": dataset["source"], "split": "test",
                                "num_images": dataset["num_images"]["test"],
                                "num_classes": len(dataset["class_names"])}}
    compared, sections, curves = {}, [], {}
    for name, folder in models.items():
        headline, table, test = evaluate_folder(folder, cfg)
        description = folder / DESCRIPTION_FILE
        model = json.loads(description.read_text()) if description.is_file() else {}
        report[name] = {"model": model, **headline}
        compared[metrics_name(name)] = model_metrics(headline, cfg["top_k"])
        sections.append(per_class_markdown(table, f"{name}: per-class results on the {dataset['source']} test split (%)"))
        curves[name] = test
        log.info("%s: mAP %.2f, F1-C %.2f, F1-O %.2f", name, headline["mAP"], headline["F1_C"], headline["F1_O"])
    write_text_atomic(paths["metrics"], json.dumps(compared, indent=2) + "\n")
    write_text_atomic(paths["evaluation"], json.dumps(report, indent=2) + "\n")
    write_text_atomic(paths["table"], "\n\n".join(sections) + "\n")
    plot_precision_recall(curves, paths["plot"])
    write_plot_data(curves, paths["plot_data"], cfg["pr_curve_points"])
    return report
