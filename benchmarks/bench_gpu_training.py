"""Training throughput and GPU utilisation of the teacher and the student at the paper's sizes.

    python benchmarks/bench_gpu_training.py [--images 2048] [--epochs 3] [--student-epochs 10] [--workers 8]
                                            [--teacher-size 672] [--student-size 224] [--proposals 500]
                                            [--keep DIR]

Makes scratch built-in data (``--images`` training images at 512 px, about a COCO photo's decoding cost) with
the real ``dataset`` and ``proposals`` stages, then runs the real ``train_teacher`` and ``train_student`` stage
commands of dvc.yaml at the paper's sizes (the defaults): VGG16 T-WDet fine-tuned at 672 with 500 proposals,
VGG16 S-Cls at 224, batch 32 both, bf16 autocast, channels-last, ``--workers`` loader processes with pinned
memory, random initial weights (speed only, nothing is learnt). Over the epochs after the first (which pays for cuDNN
autotuning and worker start-up; the student's epochs take about a second each on an H100, hence more of them)
it prints images/s and the GPU utilisation nvidia-smi sampled every 200 ms within those epochs: the mean and
the share of samples at or above the 90% target. Without CUDA the same stages run on the CPU and only images/s
is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from wsdkd.data.manifest import read_split
from wsdkd.pipeline.dag import read_stages

PROJECT = Path(__file__).resolve().parents[1]
UTILISATION_TARGET = 90.0
SAMPLE_MS = 200
VGG16 = {"name": "vgg16", "weights": "random", "weights_path": None}
STAGES = ("dataset", "proposals@train", "proposals@val", "train_teacher", "train_student")
TRAINING = {"train_teacher": "teacher", "train_student": "student"}
# A finished epoch's log line (wsdkd.engine.loop.fit): "epoch 2/3 train/loss=0.69 lr=0.01 seconds=12.3 ..."
EPOCH_LINE = re.compile(r"epoch (\d+)/\d+ .*\bseconds=([0-9.e+-]+)")


def paper_params(args: argparse.Namespace) -> dict:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["dataset"]["builtin"].update(num_train=args.images, num_test=max(args.images // 16, 32), image_size=512)
    params["proposals"]["num_proposals"] = args.proposals
    common = {"backbone": VGG16, "batch_size": 32, "num_workers": args.workers}
    params["teacher"].update(common, epochs=args.epochs, freeze_backbone=False, head="backbone", roi_op="pool",
                             scales=[args.teacher_size], cache_scale=args.teacher_size, hflip=True)
    params["student"].update(common, epochs=args.student_epochs, input_size=args.student_size)
    return params


class Utilisation:
    """nvidia-smi's GPU utilisation (%) every SAMPLE_MS, each sample stamped with its arrival time."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._process = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", f"--loop-ms={SAMPLE_MS}"],
            stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._process.stdout:
            if line.strip().isdigit():
                self.samples.append((time.time(), float(line)))

    def within(self, windows: list[tuple[float, float]]) -> np.ndarray:
        return np.array([value for stamp, value in self.samples if any(a <= stamp <= b for a, b in windows)])

    def stop(self) -> None:
        self._process.terminate()


def run_stage(command: str, cwd: Path, env: dict, log: Path) -> list[tuple[int, float, float]]:
    """Run a stage; for each epoch it finished, (epoch, start time, end time) from its log lines' arrival."""
    argv = shlex.split(command)
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    epochs = []
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        for line in process.stdout:
            out.write(line)
            match = EPOCH_LINE.search(line)
            if match:
                now = time.time()
                epochs.append((int(match[1]), now - float(match[2]), now))
    if process.wait():
        raise SystemExit(f"{log}: stage failed (exit {process.returncode}): {command}")
    return epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2048, help="training images (a tenth become validation)")
    parser.add_argument("--epochs", type=int, default=3, help="the teacher's; the first is a warm-up")
    parser.add_argument("--student-epochs", type=int, default=10, help="the student's; the first is a warm-up")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="loader processes")
    parser.add_argument("--teacher-size", type=int, default=672)
    parser.add_argument("--student-size", type=int, default=224)
    parser.add_argument("--proposals", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    specs = {spec.name: spec for spec in read_stages(PROJECT)}
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_gpu_training_"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "stages").exists():
        (work / "stages").symlink_to(PROJECT / "stages")
    (work / "params.yaml").write_text(yaml.safe_dump(paper_params(args), sort_keys=False))
    env = {**os.environ, "WSDKD_CHECKPOINTS": str(work / ".checkpoints"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT / "src"), os.environ.get("PYTHONPATH")]))}
    device = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{device}; {args.images} training images at 512 px, {args.epochs} teacher and {args.student_epochs} "
          f"student epochs, {args.workers} workers; "
          f"VGG16 teacher at {args.teacher_size} ({args.proposals} proposals), VGG16 student at "
          f"{args.student_size}, batch 32", flush=True)
    utilisation = Utilisation() if cuda else None
    try:
        for name in STAGES:
            started = time.perf_counter()
            epochs = run_stage(specs[name].cmd, work, env, work / f"{name}.log")
            print(f"{name:16s} {time.perf_counter() - started:7.1f} s", flush=True)
            if name not in TRAINING:
                continue
            train_images = len(read_split(work / "data" / "dataset", "train"))
            windows = [(start, end) for _, start, end in epochs[1:]]
            rates = [train_images / (end - start) for start, end in windows]
            pooled = len(windows) * train_images / sum(end - start for start, end in windows)
            line = (f"  {TRAINING[name]}, epochs 2-{len(epochs)}: {pooled:8.1f} images/s "
                    f"(per epoch {min(rates):.1f}-{max(rates):.1f})")
            if utilisation is not None:
                busy = utilisation.within(windows)
                line += (f"   GPU utilisation mean {busy.mean():5.1f}%, {np.mean(busy >= UTILISATION_TARGET):.0%} of "
                         f"{len(busy)} samples >= {UTILISATION_TARGET:g}%" if len(busy) else
                         "   no utilisation samples")
            print(line, flush=True)
    finally:
        if utilisation is not None:
            utilisation.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
