"""Cost model: every stage of dvc.yaml on the built-in data at N, 2N and 4N images, and what it predicts for
COCO 2014 and NUS-WIDE.

    nice -n 10 python benchmarks/cost_model.py [--sizes 32 64 128] [--gpu-speedup 30] [--keep DIR]

Each size runs in a scratch folder holding the project's params.yaml with the dataset sizes (num_train = N,
num_test = N/4, the default ratio) and the training epochs (1) overridden. The stages run one by one, with the
commands of dvc.yaml; each is measured through wait4: wall time, CPU time (the stage and its worker
processes) and the peak RSS of its largest process. The training stages run once more at 4N with 2 epochs,
which splits their time into a per-epoch part and a one-off part (bank, predictions, start-up).

Per stage it fits the growth exponent (the log-log slope over the three sizes, and the exponent of the
marginal cost, log2 of (t(4N) - t(2N)) / (t(2N) - t(N)), which start-up costs do not bend) and a linear
model t = a + b * images, which gives the extrapolation. Proposals, datasets and evaluation are CPU work
(core-hours); the teacher and student stages are GPU work: their GPU-hours are the measured CPU core-seconds
divided by ``--gpu-speedup``, an ASSUMPTION (no GPU measured here), at the project's params and epochs.
Writes reports/cost_model.md and reports/cost_model.json; ``--refit`` redoes the fit and the extrapolation from
an earlier JSON's measurements, without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from graphlib import TopologicalSorter
from pathlib import Path

import numpy as np
import yaml

from wsdkd.data.manifest import read_split
from wsdkd.pipeline.dag import read_stages, stage_edges

PROJECT = Path(__file__).resolve().parents[1]
TRAINING = {"train_teacher": ("teacher",), "train_student": ("student",),
            "distill_features": ("distill", "features"), "train_distilled": ("student",)}
GPU_STAGES = {"train_teacher", "cache_teacher", "train_student", "distill_features", "train_distilled"}
# Which images a stage's work grows with: "train" is the training pool (train + val), "test" the test split.
IMAGE_SET = {"dataset": "all", "proposals": "all", "train_teacher": "train", "cache_teacher": "all",
             "evaluate_teacher": "test", "train_student": "train", "distill_features": "train",
             "train_distilled": "train", "evaluate": "test", "figures": "test"}
# COCO 2014 after dropping images without annotations (README); NUS-WIDE's ~210,000 usable images split 60/40
# like its official split (an assumption: papers differ in what they drop).
TARGETS = {"COCO 2014": {"train": 82_081, "test": 40_137, "all": 122_218},
           "NUS-WIDE": {"train": 126_000, "test": 84_000, "all": 210_000}}
SUPERLINEAR = 1.1  # a log-log slope of CPU time above this is real growth (start-up costs only lower it)
GROWTH = 0.10  # peak memory must rise by more than this from N to 4N to count as growing (see peak_mb)


def _section(params: dict, keys: tuple[str, ...]) -> dict:
    for key in keys:
        params = params[key]
    return params


def scratch_params(n: int, epochs: int) -> dict:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["dataset"]["builtin"].update(num_train=n, num_test=max(n // 4, 4))
    for keys in TRAINING.values():
        _section(params, keys)["epochs"] = epochs
    return params


def measure(command: str, cwd: Path, env: dict, log: Path, scratch: Path) -> dict:
    """Run one stage command; its wall time, CPU seconds (with its children), largest peak RSS (MB) and the
    peak bytes of its resume folder ``scratch`` (shards, the teacher's phi bank), which it deletes at the end."""
    argv = shlex.split(command)
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    started, scratch_peak = time.perf_counter(), 0
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:  # the rusage of this child and the workers it reaped, once it has exited
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            scratch_peak = max(scratch_peak, tree_bytes([scratch]))
            time.sleep(0.5)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{log}: stage failed (exit {process.returncode}): {command}")
    return {"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024, "scratch_bytes": scratch_peak}


def tree_bytes(paths) -> int:
    """The bytes of the files at ``paths`` and under them (missing paths count 0)."""
    total = 0
    for path in paths:
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def stage_row(name: str) -> str:
    """The row a stage is reported in: the three proposals@split stages share one."""
    return name.split("@")[0]


def run_size(root: Path, specs, n: int, epochs: int, names=None) -> dict[str, dict]:
    """Run the stages (all, or ``names``) at N = n in ``root``; measurements summed per row."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "stages").exists():
        (root / "stages").symlink_to(PROJECT / "stages")
    (root / "params.yaml").write_text(yaml.safe_dump(scratch_params(n, epochs), sort_keys=False))
    env = {**os.environ, "WSDKD_CHECKPOINTS": str(root / ".checkpoints"), "OMP_NUM_THREADS": str(os.cpu_count()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT / "src"), os.environ.get("PYTHONPATH")]))}
    rows: dict[str, dict] = {}
    for spec in specs:
        if names is not None and spec.name not in names:
            continue
        figures = measure(spec.cmd, root, env, root / f"{spec.name}.log", root / ".checkpoints")
        figures["bytes"] = tree_bytes([root / out for out in spec.outs])
        row = rows.setdefault(stage_row(spec.name), dict.fromkeys(("wall_s", "cpu_s", "peak_mb", "bytes",
                                                                    "scratch_bytes"), 0.0))
        for key in ("wall_s", "cpu_s", "bytes", "scratch_bytes"):
            row[key] += figures[key]
        row["peak_mb"] = max(row["peak_mb"], figures["peak_mb"])
        print(f"  N={n:<5d} {spec.name:22s} wall {figures['wall_s']:7.1f} s  cpu {figures['cpu_s']:7.1f} s  "
              f"peak {figures['peak_mb']:7.0f} MB  outputs {figures['bytes'] / 1e6:8.2f} MB  "
              f"scratch {figures['scratch_bytes'] / 1e6:8.2f} MB", flush=True)
    return rows


def image_counts(root: Path) -> dict[str, int]:
    sizes = {name: len(read_split(root / "data" / "dataset", name)) for name in ("train", "val", "test")}
    return {"train": sizes["train"] + sizes["val"], "test": sizes["test"], "all": sum(sizes.values())}


def exponents(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The log-log slope of y over x, and the exponent of y's marginal growth (NaN where it does not grow).

    Fixed start-up costs pull the slope below 1, never above: a slope above SUPERLINEAR is real growth.
    """
    raw = float(np.polyfit(np.log(x), np.log(np.maximum(y, 1e-9)), 1)[0])
    steps = np.diff(y)
    if not (steps > 0).all():
        return raw, math.nan
    marginal = math.log(steps[-1] / steps[0]) / math.log((x[2] - x[1]) / (x[1] - x[0]))
    return raw, marginal


def cpu_seconds(x: np.ndarray, cpu: np.ndarray, raw: float, epochs: int, per_epoch: float, target: int) -> float:
    """CPU seconds at ``target`` images and ``epochs``: t = a + images * (one-off + epochs * per-epoch cost),
    from the line through the measured sizes (1 epoch) and the per-epoch cost per image; or, for a super-linear
    stage, the power law of its log-log slope from the largest size."""
    if raw > SUPERLINEAR:
        return float(cpu[-1] * (target / x[-1]) ** raw) * (1 + (epochs - 1) * per_epoch * x[-1] / cpu[-1])
    slope, start_up = np.polyfit(x, cpu, 1)
    slope = max(slope, per_epoch)
    return float(start_up + target * (slope - per_epoch + epochs * per_epoch))


def peak_mb(x: np.ndarray, peak: np.ndarray, target: int) -> float:
    """Peak RSS at ``target`` images: linear when it grew like the images (by more than GROWTH from N to 4N, its
    second step at least 1.5x its first: linear growth doubles it), else flat. The RSS of the same run varies by
    about 100 MB from run to run, which a bare threshold would take for growth."""
    steps = np.diff(peak)
    growing = peak[-1] > peak[0] * (1 + GROWTH) and steps[0] > 0 and steps[1] >= 1.5 * steps[0]
    return float(peak[-1] + (np.polyfit(x, peak, 1)[0] * (target - x[-1]) if growing else 0.0))


def model(sizes: list[int], runs: list[dict], counts: list[dict], two_epochs: dict, full_epochs: dict,
          speedup: float) -> dict:
    stages = {}
    for name in runs[0]:
        x = np.array([c[IMAGE_SET[name]] for c in counts], float)
        cpu, wall = (np.array([r[name][k] for r in runs]) for k in ("cpu_s", "wall_s"))
        peak, disk, scratch = (np.array([r[name][k] for r in runs])
                               for k in ("peak_mb", "bytes", "scratch_bytes"))
        cpu_exp = exponents(x, cpu)
        # The second epoch's CPU time at 4N, per image; what is left of the per-image cost is one-off work.
        per_epoch = max(two_epochs[name]["cpu_s"] - cpu[-1], 0.0) / x[-1] if name in two_epochs else 0.0
        epochs = full_epochs.get(name, 1)
        row = {"images": x.tolist(), "wall_s": wall.tolist(), "cpu_s": cpu.tolist(), "peak_mb": peak.tolist(),
               "output_bytes": disk.tolist(), "cpu_exponent": cpu_exp, "wall_exponent": exponents(x, wall),
               "peak_exponent": exponents(x, peak), "cpu_s_per_image_epoch": per_epoch, "epochs": epochs,
               "superlinear": cpu_exp[0] > SUPERLINEAR,
               "bytes_per_image": max(float(np.polyfit(x, disk, 1)[0]), 0.0), "scratch_bytes": scratch.tolist(),
               "scratch_bytes_per_image": max(float(np.polyfit(x, scratch, 1)[0]), 0.0),
               "peak_mb_per_1k_images": float(np.polyfit(x, peak, 1)[0] * 1000), "targets": {}}
        for target, sets in TARGETS.items():
            images = sets[IMAGE_SET[name]]
            seconds = cpu_seconds(x, cpu, cpu_exp[0], epochs, per_epoch, images)
            row["targets"][target] = {
                "images": images, "cpu_core_hours": seconds / 3600,
                "gpu_hours_assumed": seconds / speedup / 3600 if name in GPU_STAGES else None,
                "peak_gb": peak_mb(x, peak, images) / 1024, "disk_gb": row["bytes_per_image"] * images / 1e9,
                "scratch_gb": row["scratch_bytes_per_image"] * images / 1e9}
        stages[name] = row
    return {"sizes": sizes, "gpu_speedup_assumed": speedup, "superlinear_slope": SUPERLINEAR,
            "memory_growth_threshold": GROWTH, "targets": TARGETS, "stages": stages}


def _fmt(values, spec: str) -> str:
    return " / ".join(format(v, spec) for v in values)


def markdown(result: dict) -> str:
    n = result["sizes"]
    lines = [
        "# Cost model", "",
        f"Every stage on the built-in data (256 px) at N = {n[0]}, {n[1]}, {n[2]} training images and N/4 test "
        "images, 1 epoch per training stage (2 more runs at 4N measure an epoch), on "
        f"{result['machine']['cpus']} CPU cores (load average {result['machine']['load_average']:.1f} at the "
        f"start, {result['machine']['date']}): `nice -n 10 python benchmarks/cost_model.py`. Figures are "
        "N / 2N / 4N. CPU exponent: the log-log slope of CPU time over images, and in brackets the exponent "
        "of the marginal cost (start-up removed; noisy where start-up dominates). Peak memory is the largest "
        "process's RSS.", "",
        "| stage | images | wall s | CPU s | CPU exponent | CPU s per image-epoch | peak MB | "
        "peak MB per 1k images | outputs per image | scratch per image |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["stages"].items():
        raw, marginal = row["cpu_exponent"]
        flag = " **super-linear**" if row["superlinear"] else ""
        per_epoch = f"{row['cpu_s_per_image_epoch']:.3f}" if name in TRAINING else "-"
        lines.append(
            f"| {name} | {_fmt(row['images'], '.0f')} | {_fmt(row['wall_s'], '.1f')} | {_fmt(row['cpu_s'], '.1f')} | "
            f"{raw:.2f} ({marginal:.2f}){flag} | {per_epoch} | {_fmt(row['peak_mb'], '.0f')} | "
            f"{row['peak_mb_per_1k_images']:.0f} | {row['bytes_per_image'] / 1e3:.1f} KB | "
            f"{row['scratch_bytes_per_image'] / 1e3:.1f} KB |")
    speedup = result["gpu_speedup_assumed"]
    lines += ["", "## Extrapolated", "",
              "CPU time: start-up + images x (one-off cost + epochs x per-epoch cost) per image, with the "
              "project's epochs (a power law instead where the log-log slope exceeds "
              f"{result['superlinear_slope']}). Peak memory: linear where it grew like the images (more than "
              f"{result['memory_growth_threshold']:.0%} from N to 4N, the second step at least 1.5x the first), "
              "else flat (the same run's RSS varies by about 100 MB). Disk: the stage's outputs, and the peak of "
              "its scratch files (resume shards, the teacher's phi bank; deleted when the stage ends), per image. "
              f"**GPU-hours are an assumption**: the CPU core-seconds divided by {speedup:g} (one GPU doing the "
              f"work of {speedup:g} cores; `--gpu-speedup`); no GPU was measured. Per-image costs are those of "
              "the 256 px built-in images at the built-in params (EfficientNet-Lite0, 200 proposals): real "
              "photos and the paper's VGG16 at 672 px with 500 proposals cost more (EdgeBoxes: 0.56 vs 0.03 CPU s "
              "per image, README). `dataset` synthesises images; for COCO it only indexes them.", ""]
    for target, sets in result["targets"].items():
        lines += [f"### {target} ({sets['all']:,} images; {sets['train']:,} train, {sets['test']:,} test)", "",
                  "| stage | images | CPU core-hours | GPU-hours (assumed) | peak memory GB | outputs GB | "
                  "scratch GB |", "|---|---|---|---|---|---|---|"]
        totals = {"cpu": 0.0, "gpu": 0.0, "disk": 0.0, "scratch": 0.0}
        for name, row in result["stages"].items():
            t = row["targets"][target]
            gpu = t["gpu_hours_assumed"]
            totals["cpu"] += t["cpu_core_hours"] if gpu is None else 0.0
            totals["gpu"] += gpu or 0.0
            totals["disk"] += t["disk_gb"]
            totals["scratch"] = max(totals["scratch"], t["scratch_gb"])
            lines.append(f"| {name} | {t['images']:,} | {t['cpu_core_hours']:.1f} | "
                         f"{'-' if gpu is None else f'{gpu:.1f}'} | {t['peak_gb']:.2f} | {t['disk_gb']:.1f} | "
                         f"{t['scratch_gb']:.1f} |")
        lines += [f"| **total** | | **{totals['cpu']:.1f}** (CPU stages) | **{totals['gpu']:.1f}** | | "
                  f"**{totals['disk']:.1f}** | **{totals['scratch']:.1f}** (largest) |", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=3, default=[40, 80, 160],
                        help="N, 2N, 4N training images (N=40: even the smallest run fills a student batch)")
    parser.add_argument("--gpu-speedup", type=float, default=30.0,
                        help="ASSUMED CPU core-seconds per GPU-second for the training stages")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=PROJECT / "reports" / "cost_model")
    parser.add_argument("--refit", type=Path, help="no runs: refit the measurements of this earlier JSON output "
                                                   "(e.g. with another --gpu-speedup)")
    args = parser.parse_args()
    if args.refit:
        earlier = json.loads(args.refit.read_text())
        machine, measured = earlier["machine"], earlier["measured"]
    else:
        machine, measured = measure_sizes(args.sizes, args.keep)
    result = {"machine": machine, "measured": measured, **model(**measured, speedup=args.gpu_speedup)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    Path(f"{args.out}.md").write_text(text + "\n")
    print(text)


def measure_sizes(sizes: list[int], keep: Path | None) -> tuple[dict, dict]:
    """Run every stage at each size (and the training stages with 2 epochs at the largest): the machine and
    the raw measurements that :func:`model` fits."""
    specs_by_name = {s.name: s for s in read_stages(PROJECT)}
    graph: dict[str, set[str]] = {name: set() for name in specs_by_name}
    for upstream, downstream in stage_edges(list(specs_by_name.values())):
        graph[downstream].add(upstream)
    specs = [specs_by_name[name] for name in TopologicalSorter(graph).static_order()]
    machine = {"cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d")}
    work = keep or Path(tempfile.mkdtemp(prefix="cost_model_"))
    try:
        runs, counts = [], []
        for n in sizes:
            print(f"N = {n}", flush=True)
            runs.append(run_size(work / f"n{n}", specs, n, epochs=1))
            counts.append(image_counts(work / f"n{n}"))
        print(f"N = {sizes[-1]}, training stages with 2 epochs", flush=True)
        two_epochs = run_size(work / f"n{sizes[-1]}", specs, sizes[-1], epochs=2, names=set(TRAINING))
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    full_epochs = {name: _section(params, keys)["epochs"] for name, keys in TRAINING.items()}
    return machine, {"sizes": sizes, "runs": runs, "counts": counts, "two_epochs": two_epochs,
                     "full_epochs": full_epochs}


if __name__ == "__main__":
    main()
