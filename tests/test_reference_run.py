"""The committed reference run describes the committed params (dvc.lock against params.yaml)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from wsdkd.pipeline.reference import lock_param_mismatches

from .conftest import PROJECT

LOCK = {"schema": "2.0", "stages": {
    "train_student": {"cmd": "python x.py", "params": {"params.yaml": {"student": {"lr": 0.01, "epochs": 20},
                                                                       "train.devices": 1}}},
    "figures": {"cmd": "python f.py", "params": {"params.yaml": {"figures.seed": 0}}},
    "dataset": {"cmd": "python d.py"},  # a stage tracking no param
}}
PARAMS = {"student": {"lr": 0.01, "epochs": 20}, "train": {"devices": 1}, "figures": {"seed": 0}}


def test_equal_params_have_no_mismatch():
    assert lock_param_mismatches(LOCK, PARAMS) == []


def test_a_changed_default_and_a_removed_key_are_named():
    params = {**PARAMS, "student": {"lr": 0.02, "epochs": 20, "amp": True}, "figures": {}}
    assert lock_param_mismatches(LOCK, params) == [
        "figures: figures.seed = 0 in dvc.lock, absent in params.yaml",
        "train_student: student.amp = absent in dvc.lock, True in params.yaml",
        "train_student: student.lr = 0.01 in dvc.lock, 0.02 in params.yaml",
    ]


def _committed(path: str) -> str | None:
    """``path`` as committed at HEAD, or None when git does not track it there (or this is no git checkout)."""
    result = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=PROJECT, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def test_the_committed_dvc_lock_holds_the_committed_params():
    """Committed against committed: a run in this checkout (`make run`, `dvc exp run -S ...`) rewrites dvc.lock
    and may change params.yaml, which says nothing about the reference the repository carries."""
    lock = _committed("dvc.lock")
    if lock is None:
        pytest.skip("no reference run committed yet (dvc.lock is not tracked at HEAD); the README says how to make one")
    mismatches = lock_param_mismatches(yaml.safe_load(lock), yaml.safe_load(_committed("params.yaml")))
    assert not mismatches, ("the committed dvc.lock was run with other params; refresh the reference run "
                            "(README, 'The reference run'):\n" + "\n".join(mismatches))
