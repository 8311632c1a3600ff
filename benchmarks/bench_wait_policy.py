"""What idle OpenMP threads do while they wait, measured on the real train_student stage, alone and paired.

    python benchmarks/bench_wait_policy.py [--epochs 2] [--repeats 3]

Runs dvc.yaml's ``train_student`` command (the DAG's data/dataset and data/student_inputs: `make run` first)
for ``--epochs`` epochs in scratch folders, under three OpenMP wait policies, on every core (torch's default
thread count):

- ``passive``: OMP_WAIT_POLICY=PASSIVE, threads sleep at once (the package's default before 2026-12-03);
- ``package``: what ``wsdkd/__init__.py`` sets when the user set nothing (GOMP_SPINCOUNT=1000);
- ``gnu default``: GNU OpenMP's own spin, GOMP_SPINCOUNT=300000 (what a script that imports torch before the
  package gets, as the benchmarks did before 2026-12-03).

Each policy runs alone (``--repeats`` rounds, the policies in turn), then as a pair of two such runs side by
side (what Snakemake does with two jobs on the same cores, or a second experiment beside the first). It prints
the seconds per epoch of each run (the loop's own ``seconds=``, epochs after the first), their mean and
``passive``'s mean over it (above 1: faster than yielding at once). Epoch times on this 2-core VM vary by
about 10% from run to run under one policy, hence the rounds. The wait policy changes no
number: threads share the same work whatever they do between it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from bench_gpu_training import PROJECT, run_stage
from wsdkd.pipeline.dag import read_stages
from wsdkd.pipeline.stage_runner import stage_env

POLICIES = {"passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "package": {}, "gnu default": {"GOMP_SPINCOUNT": "300000"}}
# Settings that decide the policy; each run gets only its own (the package fills in the rest at start).
POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def scratch(root: Path, name: str, epochs: int) -> Path:
    """A folder where train_student reads the DAG's inputs and writes its own outputs."""
    work = root / name
    (work / "data").mkdir(parents=True)
    for link in ("stages", "data/dataset", "data/student_inputs"):
        (work / link).symlink_to(PROJECT / link)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["student"]["epochs"] = epochs
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return work


def fresh_epoch_seconds(command: str, work: Path, env: dict, log: Path) -> list[float]:
    """Run ``command`` in ``work`` with no earlier outputs or checkpoints; each epoch's seconds but the first's."""
    for output in ("models", "reports", ".checkpoints"):
        shutil.rmtree(work / output, ignore_errors=True)
    return [end - start for _, start, end in run_stage(command, work, env, log)[1:]]


def parse_with_epochs(parser: argparse.ArgumentParser, default: int) -> tuple[argparse.Namespace, str]:
    """The arguments with ``--epochs`` (at least 2: the first is not timed), and dvc.yaml's train_student command."""
    parser.add_argument("--epochs", type=int, default=default, help="the first is a warm-up and is not counted")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not counted")
    return args, {spec.name: spec for spec in read_stages(PROJECT)}["train_student"].cmd


def epoch_seconds(command: str, work: Path, policy: dict) -> list[float]:
    env = {key: value for key, value in stage_env(work, PROJECT).items() if key not in POLICY_VARIABLES}
    return fresh_epoch_seconds(command, work, {**env, **policy}, work / "train_student.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the runs alone (pairs run once)")
    args, command = parse_with_epochs(parser, 2)
    root = Path(tempfile.mkdtemp(prefix="bench_wait_policy_"))
    try:
        works = [scratch(root, name, args.epochs) for name in ("a", "b")]
        print(f"train_student, {args.epochs - 1} timed epoch(s) per run, {os.cpu_count()} cores", flush=True)
        for setting, rounds in (("alone", args.repeats), ("paired", 1)):
            seconds = {name: [] for name in POLICIES}
            for _ in range(rounds):  # policies in turn, so a slow spell of the machine slows all alike
                for name, policy in POLICIES.items():
                    with ThreadPoolExecutor(2) as pool:
                        seconds[name] += pool.map(lambda work: epoch_seconds(command, work, policy),
                                                  works[:1] if setting == "alone" else works)
            # the same epochs in both settings, so the ratio of mean epoch times is the ratio of throughputs
            base = np.mean(seconds["passive"])
            for name, values in seconds.items():
                values = np.ravel(values)
                print(f"  {setting:6s} {name:11s} seconds per epoch: mean {values.mean():5.1f} "
                      f"({', '.join(f'{value:.1f}' for value in values)}); passive's / this {base / values.mean():.2f}",
                      flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
