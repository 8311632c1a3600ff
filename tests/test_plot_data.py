"""The data behind `dvc plots`: the sampled PR envelope, the per-class AP files, and dvc.yaml's plot definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from wsdkd.evaluate.plot_data import interpolated_precision, write_plot_data
from wsdkd.evaluate.predictions import Predictions
from wsdkd.pipeline.dag import read_stages

from .conftest import PROJECT


def test_interpolated_precision_by_hand():
    # Ranked hits 1 0 1 0: precision 1, 1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1; the envelope is 1, 2/3, 2/3, 1/2.
    scores, labels = np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])
    got = interpolated_precision(scores, labels, np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    np.testing.assert_allclose(got, [1, 1, 1, 2 / 3, 2 / 3])


def test_levels_past_the_reached_recall_and_no_positive_are_zero():
    assert list(interpolated_precision(np.array([0.5, 0.4]), np.array([0, 0]), np.array([0.0, 1.0]))) == [0, 0]
    # The only positive ranks second: recall 1 is reached at precision 1/2.
    np.testing.assert_allclose(interpolated_precision(np.array([0.9, 0.1]), np.array([0, 1]), np.array([0.5, 1.0])),
                               [0.5, 0.5])


def test_plot_files_per_model(tmp_path):
    scores = np.array([[0.9, 0.2], [0.1, 0.8], [0.6, 0.3]], np.float32)
    labels = np.array([[1, 0], [0, 0], [1, 0]], np.uint8)  # class "b" has no positive
    write_plot_data({"m": Predictions(np.arange(3), scores, labels, ["a", "b"])}, tmp_path / "plots", points=3)
    pr = pd.read_csv(tmp_path / "plots" / "pr_m.csv")
    assert list(pr.columns) == ["recall", "precision"] and list(pr["recall"]) == [0, 0.5, 1]
    # Pooled ranking 0.9+ 0.8- 0.6+ ...: precision 1 at recall 1/2, then 2/3 at recall 1.
    np.testing.assert_allclose(pr["precision"], [1, 1, 2 / 3])
    ap = pd.read_csv(tmp_path / "plots" / "ap_m.csv")
    assert ap.to_dict("list") == {"class": ["a"], "AP": [100.0]}


def test_every_plot_of_dvc_yaml_reads_a_file_a_stage_writes():
    outs = {out for spec in read_stages(PROJECT) for out in spec.outs}
    plots = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["plots"]
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    trainers = set()
    for entry in plots:
        ((name, spec),) = entry.items()
        assert {"title", "x_label", "y_label", "template"} <= set(spec), f"plot {name}: title and axis labels"
        for path in spec["y"]:
            path = path.replace("${dataset.report_name}", params["dataset"]["report_name"])
            assert any(path == out or path.startswith(out + "/") for out in outs), f"plot {name}: {path} is no output"
            trainers.add(path.split("/")[1])
    assert {"teacher", "student_wo", "student_features", "student_w"} <= trainers, "all four trainers' curves"
    assert {"precision_recall", "per_class_AP"} <= {name for entry in plots for name in entry}


def test_fewer_than_two_points_is_refused_by_the_schema(default_params):
    from wsdkd.pipeline.config import validate_params
    from wsdkd.pipeline.errors import UserError

    params = {**default_params, "evaluate": {**default_params["evaluate"], "pr_curve_points": 1}}
    with pytest.raises(UserError, match=r"evaluate.pr_curve_points: expected a value >= 2, got 1"):
        validate_params(params)
