"""Cost model at the paper's sizes: every stage of dvc.yaml under the coco2014_paper preset on N, 2N and 4N real
COCO photos (the paper-scale smoke configuration, src/wsdkd/pipeline/paper_smoke.py), extrapolated to COCO 2014 and
NUS-WIDE; the teacher cache's bytes per image with the options that shrink it; and each stage's estimated peak
GPU memory at the paper's batch sizes (src/wsdkd/engine/memory.py).

    python benchmarks/cost_model.py [--sizes 2 4 8] [--coco-mini ../shared/data/coco-mini]
                                   [--gpu-throughput train_teacher=IMAGES_PER_S ...] [--keep DIR]

Each size runs in a scratch folder: N training photos (one held out for val), N/2 test photos, 1 epoch per
trainer, random initial weights; every paper size kept (VGG16, teacher at 480..832 px with flips, 500
proposals, cache at 672 with RoI features, student at 224, batch 32). Each stage is measured through wait4: wall
time, CPU time (the stage and its worker processes), the peak RSS of its largest process, its outputs' bytes.

Per stage it fits t = a + b * images and the growth exponent of the marginal cost. For the trainers, the share
of their wall time spent in the epoch (the loop's ``seconds``) splits their CPU time into a per-epoch part and a
one-off part (model set-up, validation, predictions); the extrapolation runs the preset's epochs. CPU figures only:
GPU-hours are given only for stages whose throughput was measured on a GPU with benchmarks/bench_gpu_training.py
and passed as ``--gpu-throughput STAGE=IMAGES_PER_S``; otherwise they are "not measured".
``--refit`` redoes the fit from an earlier JSON's measurements without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from wsdkd.data.manifest import read_split
from wsdkd.distill.memory import feature_training
from wsdkd.engine import memory as memory_estimate
from wsdkd.pipeline import paper_smoke
from wsdkd.pipeline.errors import UserError
from wsdkd.pipeline.presets import load_preset, merge, set_dotted
from wsdkd.pipeline.stage_runner import ordered_stages, run_stages, stage_env
from wsdkd.student.memory import student_training
from wsdkd.teacher.memory import teacher_inference, teacher_training

PROJECT = Path(__file__).resolve().parents[1]
COCO_MINI = PROJECT.parent / "shared" / "data" / "coco-mini"
# The params section whose epochs each trainer runs.
TRAINING = {"train_teacher": ("teacher",), "train_student": ("student",),
            "distill_features": ("distill", "features"), "train_distilled": ("student",)}
# Which images a stage's work grows with: "train" is the training pool (train + val), "test" the test split.
IMAGE_SET = {"dataset": "all", "proposals": "all", "student_inputs": "all", "train_teacher": "train",
             "cache_teacher": "all", "evaluate_teacher": "test", "train_student": "train", "distill_features": "train",
             "train_distilled": "train", "evaluate": "test", "figures": "test", "convergence": "test"}
# COCO 2014 after dropping images without annotations (README); NUS-WIDE's ~210,000 usable images split 60/40
# like its official split (an assumption: papers differ in what they drop).
TARGETS = {"COCO 2014": {"train": 82_081, "test": 40_137, "all": 122_218, "classes": 80},
           "NUS-WIDE": {"train": 126_000, "test": 84_000, "all": 210_000, "classes": 81}}
# The params section whose batch_size bounds a stage's memory (its batches are full beyond that many images).
BATCHED = {"train_teacher": ("teacher",), "cache_teacher": ("teacher",), "train_student": ("student",),
           "distill_features": ("student",), "train_distilled": ("student",)}
IDLE_LOAD = 1.0  # a load average under this at the start: the run had the cores to itself
GROWTH = 0.10  # peak memory must rise by more than this from N to 4N to count as growing (see peak_mb)
# The cache's options, each measured by rerunning cache_teacher at the smallest size.
CACHE_VARIANTS = {"as the paper (RoI features fp16, logits and S float32, 100 RoIs)": {},
                  "cache.cache_features: false (stage 1 runs the teacher online)": {"cache.cache_features": False},
                  "cache.dtype: float16 (logits and S)": {"cache.dtype": "float16"},
                  "cache.num_selected: 50 (fewer RoIs)": {"cache.num_selected": 50}}
CARDS_GB = (16, 24, 40, 80)  # common accelerator sizes the micro-batch table is given for
PAPER_BATCH = 32
# A finished epoch's log line (wsdkd.engine.loop.fit): "epoch 1/1 train/loss=0.69 lr=0.01 seconds=12.3 ..."
EPOCH_LINE = re.compile(r"epoch \d+/\d+ .*\bseconds=([0-9.e+-]+)")


def _section(params: dict, keys: tuple[str, ...]) -> dict:
    for key in keys:
        params = params[key]
    return params


def stage_row(name: str) -> str:
    """The row a stage is reported in: the three proposals@split stages share one."""
    return name.split("@")[0]


def epoch_seconds(log: Path) -> float:
    """Wall seconds the loop spent in its epochs' training batches (its ``seconds``), from a trainer's log."""
    return sum(float(m.group(1)) for m in EPOCH_LINE.finditer(log.read_text()))


def image_counts(root: Path) -> dict[str, int]:
    sizes = {name: len(read_split(root / "data" / "dataset", name)) for name in ("train", "val", "test")}
    return {"train": sizes["train"] + sizes["val"], "test": sizes["test"], "all": sum(sizes.values())}


def run_size(root: Path, specs, n: int, coco_mini: Path) -> tuple[dict[str, dict], dict[str, int]]:
    """Every stage at N = n training photos; measurements summed per row, and the images of each set."""
    paper_smoke.prepare(PROJECT, coco_mini, root, {"train": n, "test": max(n // 2, 1)})
    figures = run_stages(root, specs, stage_env(root, PROJECT))
    rows: dict[str, dict] = {}
    for name, f in figures.items():
        row = rows.setdefault(stage_row(name), dict.fromkeys(("wall_s", "cpu_s", "peak_mb", "bytes",
                                                             "scratch_bytes", "epoch_wall_s"), 0.0))
        for key in ("wall_s", "cpu_s", "bytes", "scratch_bytes"):
            row[key] += f[key]
        row["peak_mb"] = max(row["peak_mb"], f["peak_mb"])
        if name in TRAINING:
            row["epoch_wall_s"] = epoch_seconds(root / f"{name}.log")
    return rows, image_counts(root)


def cache_variants(root: Path, specs) -> dict[str, float]:
    """Bytes per image of the teacher cache under each CACHE_VARIANTS setting (cache_teacher rerun in ``root``)."""
    cache = [s for s in specs if s.name == "cache_teacher"]
    base = yaml.safe_load((root / "params.yaml").read_text())
    images = image_counts(root)["all"]
    out = {}
    try:
        for label, settings in CACHE_VARIANTS.items():
            params = yaml.safe_load(yaml.safe_dump(base))
            for dotted, value in settings.items():
                set_dotted(params, dotted, value, "CACHE_VARIANTS")
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            out[label] = run_stages(root, cache, stage_env(root, PROJECT))["cache_teacher"]["bytes"] / images
    finally:
        (root / "params.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    return out


def exponent(x: np.ndarray, y: np.ndarray) -> float:
    """The exponent of y's marginal growth over x (NaN where it does not grow): start-up costs do not bend it."""
    steps = np.diff(y)
    if not (steps > 0).all():
        return math.nan
    return math.log(steps[-1] / steps[0]) / math.log((x[2] - x[1]) / (x[1] - x[0]))


def peak_mb(x: np.ndarray, peak: np.ndarray, target: int, batch: int | None) -> float:
    """Peak RSS at ``target`` images: linear when it grew like the images (by more than GROWTH from N to 4N, its
    second step at least 1.5x its first: linear growth doubles it), else flat (run-to-run noise is ~100 MB).
    A stage that works in batches of ``batch`` images grows only until its batch is full: at these sizes
    every image fits in one batch."""
    steps = np.diff(peak)
    growing = peak[-1] > peak[0] * (1 + GROWTH) and steps[0] > 0 and steps[1] >= 1.5 * steps[0]
    until = target if batch is None else min(target, batch)
    return float(peak[-1] + (np.polyfit(x, peak, 1)[0] * max(until - x[-1], 0) if growing else 0.0))


def memory_table(params: dict) -> dict[str, dict]:
    """Each GPU stage's estimated peak at the paper's batch (32) on COCO (80 classes, 500 proposals), and the
    micro-batch train.memory_cap_gb would pick on each of CARDS_GB (None: the whole batch fits)."""
    teacher, student, features = params["teacher"], params["student"], params["distill"]["features"]
    rois = params["cache"]["num_selected"] if features["roi_source"] == "selected" else params["proposals"]["num_proposals"]
    classes, proposals = TARGETS["COCO 2014"]["classes"], params["proposals"]["num_proposals"]
    estimates = {"train_teacher": teacher_training(teacher, classes, proposals),
                 "cache_teacher": teacher_inference(teacher, classes, proposals),
                 "train_student": student_training(student, classes),
                 "distill_features": feature_training(student, classes, rois, features["layer"]),
                 "train_distilled": student_training(student, classes)}
    table = {}
    for name, m in estimates.items():
        micro = {}
        for card in CARDS_GB if name in TRAINING else ():  # the cap splits training batches only
            try:
                micro[str(card)] = memory_estimate.micro_batch_size(m, PAPER_BATCH, card, name)
            except UserError:  # not even one image fits that card
                micro[str(card)] = 0
        table[name] = {"state_gb": m.state_bytes / memory_estimate.GB,
                       "per_image_gb": m.per_image_bytes / memory_estimate.GB,
                       "peak_gb_at_32": m.peak_bytes(PAPER_BATCH) / memory_estimate.GB, "micro_batch": micro}
    return table


def model(measured: dict, params: dict, epochs: dict, gpu: dict[str, float]) -> dict:
    runs, counts = measured["runs"], measured["counts"]
    stages = {}
    for name in runs[0]:
        x = np.array([c[IMAGE_SET[name]] for c in counts], float)
        cpu, wall, peak, disk = (np.array([r[name][k] for r in runs]) for k in ("cpu_s", "wall_s", "peak_mb", "bytes"))
        slope, start_up = np.polyfit(x, cpu, 1)
        row = {"images": x.tolist(), "wall_s": wall.tolist(), "cpu_s": cpu.tolist(), "peak_mb": peak.tolist(),
               "output_bytes": disk.tolist(), "cpu_exponent": exponent(x, cpu), "cpu_s_per_image": float(slope),
               "bytes_per_image": max(float(np.polyfit(x, disk, 1)[0]), 0.0), "targets": {}}
        per_epoch = 0.0
        if name in TRAINING:  # the epoch's share of the wall time, applied to the CPU time
            share = np.array([r[name]["epoch_wall_s"] for r in runs]) / wall
            per_epoch = max(float(np.polyfit(x, cpu * share, 1)[0]), 0.0)
            row.update(cpu_s_per_image_epoch=per_epoch, epochs=epochs[name])
        slope = max(slope, per_epoch)
        for target, sets in TARGETS.items():
            images = sets[IMAGE_SET[name]]
            seconds = start_up + images * (slope - per_epoch + epochs.get(name, 1) * per_epoch)
            batch = _section(params, BATCHED[name])["batch_size"] if name in BATCHED else None
            entry = {"images": images, "cpu_core_hours": seconds / 3600,
                     "peak_gb": peak_mb(x, peak, images, batch) / 1024,
                     "disk_gb": row["bytes_per_image"] * images / 1e9, "gpu_hours": None}
            if name in gpu:  # measured images/s on a GPU, per epoch
                entry["gpu_hours"] = images * epochs.get(name, 1) / gpu[name] / 3600
            row["targets"][target] = entry
        stages[name] = row
    return {"targets": TARGETS, "stages": stages, "gpu_throughput_measured": gpu}


def _fmt(values, spec: str) -> str:
    return " / ".join(format(v, spec) for v in values)


def _load(machine: dict) -> str:
    """How busy the cores were when the run started, as the table's caption says it."""
    load = machine["load_average"]
    if load < IDLE_LOAD:
        return f"idle at the start (load average {load:.1f}, {machine['date']})"
    return (f"**shared with other jobs** (load average {load:.1f} at the start, {machine['date']}), so the CPU "
            "times are noisy (wall times far more than CPU times)")


def markdown(result: dict) -> str:
    n, machine = result["sizes"], result["machine"]
    lines = [
        "# Cost model at the paper's sizes", "",
        f"Every stage under the `coco2014_paper` preset on N = {n[0]}, {n[1]}, {n[2]} real coco-mini training "
        "photos (one held out for val) and N/2 test photos, 1 epoch per trainer, random initial weights; every "
        "paper size kept (VGG16, teacher at 480..832 px with flips, 500 proposals, cache at 672 with RoI "
        f"features, student at 224, batch 32). Measured on {machine['cpus']} CPU cores {_load(machine)}: "
        "`python benchmarks/cost_model.py`. Figures are N / 2N / 4N; the CPU exponent is "
        "that of the marginal cost (NaN where it did not grow). Peak memory is the largest process's RSS.", "",
        "| stage | images | wall s | CPU s | CPU exponent | CPU s per image | CPU s per image-epoch | peak MB | "
        "outputs per image |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["stages"].items():
        per_epoch = f"{row['cpu_s_per_image_epoch']:.1f}" if "epochs" in row else "-"
        lines.append(f"| {name} | {_fmt(row['images'], '.0f')} | {_fmt(row['wall_s'], '.0f')} | "
                     f"{_fmt(row['cpu_s'], '.0f')} | {row['cpu_exponent']:.2f} | {row['cpu_s_per_image']:.1f} | "
                     f"{per_epoch} | {_fmt(row['peak_mb'], '.0f')} | {row['bytes_per_image'] / 1e6:.2f} MB |")
    gpu = result["gpu_throughput_measured"]
    lines += ["", "## Extrapolated", "",
              "CPU core-hours: start-up + images x (one-off cost + epochs x per-epoch cost), with the preset's "
              "epochs (teacher 20, students 12, stage 1 100). GPU-hours: "
              + ("from the images/s measured on a GPU (`--gpu-throughput`) for "
                 + ", ".join(f"{k} {v:g}/s" for k, v in gpu.items()) if gpu else
                 "**not measured** (no GPU was lent to this session; `benchmarks/bench_gpu_training.py` measures "
                 "them on one)") + ". Peak memory: the CPU run's RSS, linear where it grew like the images, up to the stage's batch size. Disk: "
              "outputs per image times images (`dataset` and `figures` also draw a few sample pictures, "
              "whose size stops growing: their outputs GB are overestimates). Under `train.memory_cap_gb: 3` "
              "(the smoke configuration) the teacher trained in micro-batches of 1, so its peak RSS is that of "
              "one 832 px image; the whole batch of 32 needs the estimate of the last table.", ""]
    for target, sets in result["targets"].items():
        lines += [f"### {target} ({sets['all']:,} images; {sets['train']:,} train, {sets['test']:,} test)", "",
                  "| stage | images | CPU core-hours | GPU-hours | peak RSS GB | outputs GB |", "|---|---|---|---|---|---|"]
        cpu_total = disk_total = 0.0
        for name, row in result["stages"].items():
            t = row["targets"][target]
            cpu_total, disk_total = cpu_total + t["cpu_core_hours"], disk_total + t["disk_gb"]
            gpu_cell = "not measured" if t["gpu_hours"] is None else f"{t['gpu_hours']:.1f}"
            lines.append(f"| {name} | {t['images']:,} | {t['cpu_core_hours']:,.0f} | {gpu_cell} | "
                         f"{t['peak_gb']:.1f} | {t['disk_gb']:,.1f} |")
        lines += [f"| **total** | | **{cpu_total:,.0f}** | | | **{disk_total:,.0f}** |", ""]
    lines += ["## The teacher cache", "",
              f"cache_teacher rerun at N = {n[0]} with each option (bytes per image include the file's fixed "
              "overhead):", "", "| option | per image | COCO 2014 | NUS-WIDE |", "|---|---|---|---|"]
    for label, per_image in result["cache_bytes_per_image"].items():
        lines.append(f"| {label} | {per_image / 1e6:.2f} MB | {per_image * TARGETS['COCO 2014']['all'] / 1e9:,.0f} GB"
                     f" | {per_image * TARGETS['NUS-WIDE']['all'] / 1e9:,.0f} GB |")
    lines += ["", "## Peak GPU memory at the paper's batch (estimated)", "",
              "From `src/wsdkd/engine/memory.py` (shapes on PyTorch's meta device; float32, an upper bound under "
              "bf16 autocast; CUDA context, cuDNN workspaces and fragmentation not included), COCO's 80 classes "
              "and 500 proposals, batch 32. The last columns: the micro-batch `train.memory_cap_gb` picks for a "
              "card of that size (\"whole\": no split; 0: not even one image fits; -: not a trainer, its batch is "
              "teacher.batch_size).", "",
              "| stage | weights + optimiser GB | per image GB | peak at batch 32 GB | "
              + " | ".join(f"{c} GB" for c in CARDS_GB) + " |", "|---|---|---|---|" + "---|" * len(CARDS_GB)]
    for name, m in result["gpu_memory"].items():
        cells = " | ".join("whole" if v is None else str(v) for v in m["micro_batch"].values()) or " | ".join(
            "-" * len(CARDS_GB))
        lines.append(f"| {name} | {m['state_gb']:.2f} | {m['per_image_gb']:.3f} | {m['peak_gb_at_32']:.1f} | {cells} |")
    return "\n".join(lines)


def measure_sizes(sizes: list[int], coco_mini: Path, keep: Path | None) -> tuple[dict, dict, dict, dict]:
    """Run every stage at each size, then the cache options at the smallest: the machine, the raw measurements,
    the cache's bytes per image and the run's params (the preset's)."""
    specs = ordered_stages(PROJECT)
    machine = {"cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d")}
    work = keep or Path(tempfile.mkdtemp(prefix="cost_model_"))
    try:
        runs, counts = [], []
        for n in sizes:
            print(f"N = {n}", flush=True)
            rows, images = run_size(work / f"n{n}", specs, n, coco_mini)
            runs.append(rows)
            counts.append(images)
        print(f"N = {sizes[0]}, the cache's options", flush=True)
        cache = cache_variants(work / f"n{sizes[0]}", specs)
        params = yaml.safe_load((work / f"n{sizes[0]}" / "params.yaml").read_text())
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return machine, {"sizes": sizes, "runs": runs, "counts": counts}, cache, params


def _throughput(text: str) -> tuple[str, float]:
    stage, _, value = text.partition("=")
    if stage not in TRAINING or not value:
        raise argparse.ArgumentTypeError(f"expected STAGE=IMAGES_PER_S with STAGE one of {', '.join(TRAINING)}")
    return stage, float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=3, default=[2, 4, 8], help="N, 2N, 4N training photos")
    parser.add_argument("--coco-mini", type=Path, default=COCO_MINI)
    parser.add_argument("--gpu-throughput", type=_throughput, action="append", default=[],
                        metavar="STAGE=IMAGES_PER_S", help="a trainer's images/s measured on a GPU with "
                                                           "benchmarks/bench_gpu_training.py")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=PROJECT / "reports" / "cost_model")
    parser.add_argument("--refit", type=Path, help="no runs: refit the measurements of this earlier JSON output")
    args = parser.parse_args()
    unknown = sorted({spec.name.split("@")[0] for spec in ordered_stages(PROJECT)} - IMAGE_SET.keys())
    if unknown:  # before the runs, not after them: the fit needs each stage's image set
        parser.error(f"IMAGE_SET names no image set for the stage(s) {', '.join(unknown)} of dvc.yaml")
    if args.refit:
        earlier = json.loads(args.refit.read_text())
        machine, measured, cache, params = (earlier[k] for k in ("machine", "measured", "cache_bytes_per_image",
                                                                  "params"))
    else:
        machine, measured, cache, params = measure_sizes(args.sizes, args.coco_mini, args.keep)
    # The runs trained 1 epoch; the extrapolation and the memory table take the preset's own settings.
    paper = merge(yaml.safe_load((PROJECT / "params.yaml").read_text()), load_preset(paper_smoke.PRESET))
    epochs = {name: _section(paper, keys)["epochs"] for name, keys in TRAINING.items()}
    result = {"machine": machine, "sizes": measured["sizes"], "measured": measured, "params": params,
              **model(measured, paper, epochs, dict(args.gpu_throughput)), "cache_bytes_per_image": cache,
              "gpu_memory": memory_table(paper)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(result, indent=2) + "\n"), (".md", markdown(result) + "\n")):
        path = Path(f"{args.out}{suffix}")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    print(markdown(result))


if __name__ == "__main__":
    main()
