"""The Snakefile passes Snakemake's own linter and snakefmt's check, as the README promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wsdkd.pipeline.dag import read_stages

from .conftest import PROJECT

BIN = Path(sys.executable).parent


def test_snakemake_lint_finds_nothing():
    run = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=PROJECT, capture_output=True, text=True)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "Lints for" not in out, out[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in out


def test_snakefmt_check_passes():
    run = subprocess.run([str(BIN / "snakefmt"), "--check", "--diff", "Snakefile"], cwd=PROJECT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_every_stage_logs_to_its_own_file():
    logs = [spec.log for spec in read_stages(PROJECT)]
    assert len(set(logs)) == len(logs) and all(log.startswith("logs/") and log.endswith(".log") for log in logs)
    assert "logs/proposals__train.log" in logs
