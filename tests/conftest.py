"""Shared fixtures: the real COCO photos beside the project, and small built-in datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
COCO_MINI = PROJECT.parent / "shared" / "data" / "coco-mini"


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    if not (COCO_MINI / "annotations" / "instances_val2017.json").is_file():
        pytest.skip(f"real COCO photos not found at {COCO_MINI} (they sit beside the project in CI, not in a user's clone)")
    return COCO_MINI


@pytest.fixture(scope="session")
def default_params() -> dict:
    return yaml.safe_load((PROJECT / "params.yaml").read_text())


def tiny_dataset_cfg(default_params: dict, num_train: int = 24, num_test: int = 12, image_size: int = 96) -> dict:
    cfg = {**default_params["dataset"], "val_fraction": 0.25}
    cfg["builtin"] = {**cfg["builtin"], "num_train": num_train, "num_test": num_test, "image_size": image_size}
    return cfg


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory, default_params) -> Path:
    """A built-in dataset of a few dozen small images, prepared once per test session."""
    from wsdkd.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("tiny") / "dataset"
    prepare_dataset(tiny_dataset_cfg(default_params), out)
    return out
