"""params.yaml is validated against the schema: every problem is one line naming the key and the expectation."""

from __future__ import annotations

import copy

import pytest
import yaml

from wsdkd.pipeline.config import load_params, validate_params
from wsdkd.pipeline.errors import UserError

from .conftest import PROJECT


def _problems(params) -> list[str]:
    with pytest.raises(UserError) as info:
        validate_params(params)
    return str(info.value).splitlines()


def test_the_shipped_params_are_valid():
    params = load_params(PROJECT / "params.yaml")
    assert {"dataset", "student", "evaluate"} <= set(params)


def test_wrong_type_names_key_and_expected_type(default_params):
    params = copy.deepcopy(default_params)
    params["student"]["epochs"] = "ten"
    assert _problems(params) == ["params.yaml: student.epochs: expected integer, got 'ten'"]


def test_out_of_range_names_the_bound(default_params):
    params = copy.deepcopy(default_params)
    params["student"]["lr"] = -0.1
    assert _problems(params) == ["params.yaml: student.lr: expected a value > 0, got -0.1"]


def test_unknown_key_lists_the_allowed_ones(default_params):
    params = copy.deepcopy(default_params)
    params["student"]["learning_rate"] = 0.1
    (line,) = _problems(params)
    assert line.startswith("params.yaml: student: unknown key 'learning_rate' (expected one of: ")
    assert "lr" in line


def test_unknown_choice_lists_the_choices(default_params):
    params = copy.deepcopy(default_params)
    params["student"]["backbone"]["name"] = "alexnet"
    assert _problems(params) == [
        "params.yaml: student.backbone.name: expected one of 'vgg16', 'resnet50', 'efficientnet_lite0', got 'alexnet'"]


@pytest.mark.faults(kind="bad inputs")
def test_every_problem_is_reported_at_once(default_params):
    params = copy.deepcopy(default_params)
    params["student"]["epochs"] = 0
    params["evaluate"]["top_k"] = "3"
    del params["dataset"]["split_seed"]
    problems = _problems(params)
    assert len(problems) == 3
    assert any("dataset: missing key 'split_seed'" in p for p in problems)


def test_bad_yaml_and_missing_file_are_one_line(tmp_path):
    broken = tmp_path / "params.yaml"
    broken.write_text("student: [unclosed\n")
    with pytest.raises(UserError, match=r"params.yaml: not valid YAML at line \d"):
        load_params(broken)
    with pytest.raises(UserError, match="params file not found"):
        load_params(tmp_path / "absent.yaml")


@pytest.mark.faults(kind="bad inputs")
def test_stage_script_prints_one_line_and_exits_2(tmp_path, default_params):
    import subprocess
    import sys

    params = copy.deepcopy(default_params)
    params["student"]["batch_size"] = 0
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, str(PROJECT / "stages/train_student.py"), "--params", str(path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {path}: student.batch_size: expected a value >= 1, got 0"


@pytest.mark.parametrize("source, report_name, expected", [("nuswide", "coco", "nuswide"), ("coco2014", "nuswide", "coco")])
def test_the_report_name_follows_the_dataset(default_params, source, report_name, expected):
    params = copy.deepcopy(default_params)
    params["dataset"].update(source=source, report_name=report_name)
    assert _problems(params) == [f"params.yaml: dataset.report_name: expected {expected!r}, got {report_name!r}"]
    params["dataset"]["report_name"] = expected
    validate_params(params)
