"""One process of every thread, or DDP over gloo processes of one thread each, on the real train_student stage.

    python benchmarks/bench_cpu_processes.py [--epochs 3] [--processes 2]

Runs dvc.yaml's ``train_student`` command (the DAG's data/dataset and data/student_inputs: `make run` first) for
``--epochs`` epochs in a scratch folder, first as the DAG runs it (one process, torch's default threads), then
under ``torch.distributed.run --nproc_per_node=PROCESSES`` with OMP_NUM_THREADS=1 (engine/distributed.py joins
the gloo group on CPU, each process takes batch_size / PROCESSES of every batch). It prints each run's seconds
per epoch (the loop's own ``seconds=``, epochs after the first), their ratio, and the validation mAP per epoch:
each DDP process normalises batch norm over its share of the batch, so the two runs learn different weights.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bench_gpu_training import PROJECT
from bench_wait_policy import fresh_epoch_seconds, parse_with_epochs, scratch
from wsdkd.pipeline.stage_runner import stage_env

VAL_MAP = re.compile(r"val/mAP=([0-9.]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    args, command = parse_with_epochs(parser, 3)
    root = Path(tempfile.mkdtemp(prefix="bench_cpu_processes_"))
    try:
        work = scratch(root, "run", args.epochs)
        runs = {"one process": (command, None),  # threads per process: None, every core
                f"{args.processes} x 1 thread": (f"python -m torch.distributed.run --standalone "
                                                 f"--nproc_per_node={args.processes} {command.split(' ', 1)[1]}", 1)}
        seconds = {}
        for name, (cmd, threads) in runs.items():
            log = root / f"{len(seconds)}.log"
            seconds[name] = fresh_epoch_seconds(cmd, work, stage_env(work, PROJECT, threads), log)
            val = [float(m[1]) for line in log.read_text().splitlines() if " epoch " in line
                   and (m := VAL_MAP.search(line))]
            print(f"  {name:14s} seconds per epoch: mean {np.mean(seconds[name]):5.1f} "
                  f"({', '.join(f'{v:.1f}' for v in seconds[name])}); val mAP per epoch "
                  f"{', '.join(f'{v:.1f}' for v in val)}", flush=True)
        one, many = (np.mean(v) for v in seconds.values())
        print(f"  {args.processes} processes / one: {one / many:.2f}x the images per second")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
