"""The evaluation stage: score each model's predictions and write the files people read.

``<prefix>_metrics.json`` (DVC metrics: one block per model, so ``dvc metrics diff`` compares models across
runs, plus the dataset it measured), ``<prefix>_per_class.md`` and ``<prefix>_pr.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..pipeline.atomic import write_text_atomic
from .metrics import threshold_grid
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


def evaluate_models(models: dict[str, Path], cfg: dict, dataset_dir: Path, metrics_path: Path,
                    table_path: Path, plot_path: Path) -> dict:
    """``models`` maps a report name to a model folder holding ``predictions_{val,test}.parquet``."""
    dataset = json.loads((dataset_dir / "classes.json").read_text())
    report: dict = {"dataset": {"source": dataset["source"], "split": "test",
                                "num_images": dataset["num_images"]["test"],
                                "num_classes": len(dataset["class_names"])}}
    sections, curves = [], {}
    for name, folder in models.items():
        headline, table, test = evaluate_folder(folder, cfg)
        description = folder / DESCRIPTION_FILE
        model = json.loads(description.read_text()) if description.is_file() else {}
        report[name] = {"model": model, **headline}
        sections.append(per_class_markdown(table, f"{name}: per-class results on the {dataset['source']} test split (%)"))
        curves[name] = test
        log.info("%s: mAP %.2f, F1-C %.2f, F1-O %.2f", name, headline["mAP"], headline["F1_C"], headline["F1_O"])
    write_text_atomic(metrics_path, json.dumps(report, indent=2) + "\n")
    write_text_atomic(table_path, "\n\n".join(sections) + "\n")
    plot_precision_recall(curves, plot_path)
    return report
