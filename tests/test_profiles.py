"""The cluster profiles: every stage's SLURM submission carries the resources declared in workflow/resources.yaml.

The slurm profile runs for real (Snakemake, snakemake-executor-plugin-slurm, the pipeline's Snakefile) in a copy
of the project; only the cluster is fake: `sbatch` records its command line and "runs" the job by creating the
rule's outputs, `sacct` reports every job completed. So what is checked is the sbatch line the plugin would send.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wsdkd.pipeline.dag import RESOURCES_FILE, read_resources, read_stages
from wsdkd.pipeline.errors import UserError

from .conftest import PROJECT

BIN = Path(sys.executable).parent
GPU_STAGES = {"train_teacher", "cache_teacher", "train_student", "distill_features", "train_distilled"}
PROJECT_FILES = ("dvc.yaml", "params.yaml", "Snakefile", "workflow", "stages", "src")

FAKE_SBATCH = r'''#!{python}
"""sbatch: record the call, create the job's outputs (as the job would), answer like --parsable."""
import json, os, sys
from pathlib import Path
state = Path(os.environ["FAKE_SLURM"])
rule = sys.argv[sys.argv.index("--comment") + 1].removeprefix("rule_")
with open(state / "sbatch.jsonl", "a") as log:
    log.write(json.dumps({{"rule": rule, "argv": sys.argv[1:]}}) + "\n")
for out, is_dir in json.loads((state / "outputs.json").read_text())[rule]:
    out = Path(out)
    (out if is_dir else out.parent).mkdir(parents=True, exist_ok=True)
    if not is_dir:
        out.touch()
with open(state / "ids", "a") as ids:
    ids.write(f"{{os.getpid()}}\n")  # unique among concurrent submissions
print(os.getpid())
'''
FAKE_SACCT = r'''#!/bin/sh
# sacct: every job submitted so far has completed.
sed 's/$/|COMPLETED/' "$FAKE_SLURM/ids"
'''
SILENT = "#!/bin/sh\nexit 0\n"  # the plugin's account and partition guesses find nothing, as on a bare cluster


def _fake_slurm(folder: Path) -> Path:
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    (folder / "ids").touch()
    scripts = {"sbatch": FAKE_SBATCH.format(python=sys.executable), "sacct": FAKE_SACCT,
               **{name: SILENT for name in ("squeue", "sinfo", "sacctmgr", "scontrol")}}
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _workspace(root: Path) -> Path:
    root.mkdir()
    for name in PROJECT_FILES:
        (shutil.copytree if (PROJECT / name).is_dir() else shutil.copy)(PROJECT / name, root / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> dict[str, list[str]]:
    """Rule name -> the sbatch arguments the slurm profile submitted it with, for a whole forced run."""
    tmp = tmp_path_factory.mktemp("slurm")
    root, state = _workspace(tmp / "project"), tmp / "cluster"
    bin_dir = _fake_slurm(state)
    specs = read_stages(root)
    (state / "outputs.json").write_text(json.dumps(
        {spec.rule_name: [(out, out in spec.directories) for out in spec.outs] for spec in specs}))
    env = {**os.environ, "FAKE_SLURM": str(state), "PATH": f"{bin_dir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(root / "src")}
    run = subprocess.run(
        [str(BIN / "snakemake"), "--profile", "workflow/profiles/slurm", "--forceall", "--latency-wait", "0",
         "--slurm-init-seconds-before-status-checks", "1", "--no-hooks"],  # no hooks: nothing real to record in DVC
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    calls = [json.loads(line) for line in (state / "sbatch.jsonl").read_text().splitlines()]
    return {call["rule"]: call["argv"] for call in calls}


def _option(argv: list[str], name: str) -> str | None:
    """The value of ``--name value``, ``--name=value`` or ``-n value`` in an sbatch command line."""
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@pytest.mark.e2e
def test_every_stage_is_submitted_with_its_declared_resources(submissions):
    declared = yaml.safe_load((PROJECT / RESOURCES_FILE).read_text())
    specs = read_stages(PROJECT)
    assert set(submissions) == {spec.rule_name for spec in specs}, "one SLURM job per stage"
    for spec in specs:
        base = spec.name.partition("@")[0]
        assert base in declared, f"stage {base} has no entry in {RESOURCES_FILE}"
        argv, wanted = submissions[spec.rule_name], declared[base]
        assert _option(argv, "--mem") == str(wanted["mem_mb"]), spec.name
        assert _option(argv, "-t") == str(wanted["runtime"]), spec.name
        assert _option(argv, "--cpus-per-task") == str(spec.threads), spec.name
        assert _option(argv, "--gpus") == (str(wanted["gpu"]) if "gpu" in wanted else None), spec.name


@pytest.mark.e2e
def test_gpu_stages_ask_for_a_gpu_and_proposals_for_cores(submissions):
    gpu = {rule for rule, argv in submissions.items() if _option(argv, "--gpus")}
    assert gpu == GPU_STAGES
    for split in ("train", "val", "test"):
        assert int(_option(submissions[f"proposals__{split}"], "--cpus-per-task")) >= 8


def test_local_profile_dry_run_lists_every_stage_with_its_resources():
    run = subprocess.run([str(BIN / "snakemake"), "--profile", "workflow/profiles/local", "-n", "--forceall"],
                         cwd=PROJECT, capture_output=True, text=True, check=True)
    jobs = dict(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", run.stdout, flags=re.M))
    assert set(jobs) >= {spec.rule_name for spec in read_stages(PROJECT)}
    assert all(("gpu=1" in jobs[rule]) == (rule in GPU_STAGES) for rule in jobs)


def test_resources_must_name_stages(tmp_path):
    path = tmp_path / "resources.yaml"
    path.write_text("train_techer: {mem_mb: 1000}\n")
    with pytest.raises(UserError, match=r"resources.yaml: 'train_techer' is not a stage of dvc.yaml"):
        read_resources(path, {"train_teacher"})
