"""Stage 2 only on a small built-in dataset: learnable vs fixed temperatures, the paper's vs the old loss scale.

    nice python benchmarks/stage2_rows.py --work /tmp/stage2_rows            # build, train every row, summarise
    python benchmarks/stage2_rows.py --work /tmp/stage2_rows --summary-only  # only the table, from a finished run

A CPU-sized check of issue 20, not the paper's protocol (one seed, no stage 1, 8 epochs): params.yaml with 600
training images (540 train / 60 val), 200 test, the teacher trained 30 epochs; then `train_distilled` from the
ImageNet student for each row below, through the stage scripts. Prints one Markdown row each: test mAP, the last
validation BCE, and the stage-2 readings of the first and last epochs (src/wsdkd/distill/diagnostics.py).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from wsdkd.data.manifest import read_split
from wsdkd.evaluate import metrics
from wsdkd.evaluate.predictions import read_predictions
from wsdkd.teacher.cache import TeacherCache

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"num_train": 600, "num_test": 200, "teacher_epochs": 30, "teacher_patience": 3, "student_epochs": 8}
FIXED = {"teacher_temperature": 1.0, "student_temperature": 1.0}
ROWS = {  # distill.predictions overrides
    "no_soft": {"soft_loss": "none"},
    "paper_learnable": {},
    "paper_fixed": FIXED,
    "old_learnable": {"lam": 12.0},  # K = 12: the ratio of the BCE averaged over classes
    "old_fixed": {"lam": 12.0, **FIXED},
}


def small_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"]["builtin"].update(num_train=SMALL["num_train"], num_test=SMALL["num_test"])
    params["teacher"].update(epochs=SMALL["teacher_epochs"], lr_patience=SMALL["teacher_patience"])
    params["student"]["epochs"] = SMALL["student_epochs"]
    params["distill"]["features"]["method"] = "none"  # stage 2 only
    return params


def run(*args: str | Path) -> None:
    subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, check=True)


def train(work: Path) -> None:
    os.environ.setdefault("WSDKD_CHECKPOINTS", str(work / "checkpoints"))
    work.mkdir(parents=True, exist_ok=True)
    base = small_params()
    for name, change in {"base": {}, **ROWS}.items():
        params = copy.deepcopy(base)
        params["distill"]["predictions"].update(change)
        (work / f"params_{name}.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    p, data = work / "params_base.yaml", work / "dataset"
    run("stages/prepare_dataset.py", "--params", p, "--out", data, "--samples", work / "samples.png")
    for split in ("train", "val", "test"):
        run("stages/extract_proposals.py", "--params", p, "--manifest", data, "--split", split,
            "--out", work / "proposals" / f"{split}.h5", "--bad-images", work / "proposals" / f"{split}_bad.json",
            "--report", work / "proposals" / f"recall_{split}.json", "--plot", work / "proposals" / f"{split}.png",
            "--quiet")
    run("stages/train_teacher.py", "--params", p, "--manifest", data, "--proposals", work / "proposals",
        "--out", work / "teacher", "--live", work / "live_teacher", "--stage", "rows_teacher")
    run("stages/cache_teacher.py", "--params", p, "--manifest", data, "--proposals", work / "proposals",
        "--model", work / "teacher", "--out", work / "cache")
    run("stages/distill_features.py", "--params", p, "--manifest", data, "--cache", work / "cache",
        "--teacher", work / "teacher", "--out", work / "init", "--live", work / "live_init", "--stage", "rows_init")
    for row in ROWS:
        run("stages/train_distilled.py", "--params", work / f"params_{row}.yaml", "--manifest", data,
            "--cache", work / "cache", "--teacher", work / "teacher", "--init", work / "init",
            "--out", work / f"out_{row}", "--live", work / f"live_{row}", "--stage", f"rows_{row}")


def curve(work: Path, row: str, name: str) -> list[float]:
    path = work / f"live_{row}" / "plots" / "metrics" / f"{name}.tsv"
    if not path.exists():
        return []
    with path.open() as f:
        return [float(r[name.split("/")[-1]]) for r in csv.DictReader(f, delimiter="\t")]


def _span(values: list[float], digits: int) -> str:
    return f"{values[0]:.{digits}f} -> {values[-1]:.{digits}f}" if values else "n/a"


def summarise(work: Path) -> None:
    cache = TeacherCache(work / "cache" / "test.h5")
    labels = read_split(work / "dataset", "test").labels
    print(f"teacher test mAP {100 * metrics.mean_ap(cache.image_scores(), labels):.1f} (its cache's p)")
    cache.close()
    print("| row | lambda | temperatures | test mAP | val BCE (last) | val mean target on positives | val mean "
          "student score on positives | val opposing share | t^c at the end | LR |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in ROWS:
        out = work / f"out_{row}"
        if not (out / "predictions_test.parquet").exists():
            continue
        preds = read_predictions(out / "predictions_test.parquet")
        desc = json.loads((out / "model.json").read_text())
        d, tc = desc["distillation"], desc["temperatures"]["tc"]
        temps = "learnable" if d["teacher_temperature"] == "learnable" else f"fixed at {d['teacher_temperature']:g}"
        lrs = sorted(set(curve(work, row, "lr")), reverse=True)
        print(f"| {row} | {d['lam']:g} | {temps if d['soft_loss'] != 'none' else 'n/a'} | "
              f"{100 * metrics.mean_ap(preds.scores, preds.labels):.1f} | {curve(work, row, 'val/bce')[-1]:.3f} | "
              f"{_span(curve(work, row, 'val/target_on_positives'), 3)} | "
              f"{_span(curve(work, row, 'val/student_on_positives'), 3)} | "
              f"{_span(curve(work, row, 'val/opposing_share'), 2)} | {min(tc):.2f}-{max(tc):.2f} | "
              f"{', '.join(f'{v:.3g}' for v in lrs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="a scratch folder for the whole run")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    if not args.summary_only:
        train(args.work)
    summarise(args.work)


if __name__ == "__main__":
    main()
