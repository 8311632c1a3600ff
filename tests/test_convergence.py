"""Has validation mAP flattened: the tail of a curve, the longer-run verdict, and the convergence stage."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import PROJECT
from wsdkd.evaluate import convergence
from wsdkd.pipeline.errors import UserError


def _live(folder, values):
    """A dvclive folder as the trainers write it: one val/mAP point per epoch."""
    from dvclive import Live

    live = Live(str(folder), dvcyaml=False, save_dvc_exp=False, report=None)
    for value in values:
        live.log_metric("val/mAP", value)
        live.next_step()
    live.end()
    return folder


def test_the_curve_is_read_back_from_dvclive_in_epoch_order(tmp_path):
    assert convergence.read_curve(_live(tmp_path / "live", [30.0, 35.5, 36.0])) == [30.0, 35.5, 36.0]
    with pytest.raises(UserError, match=r"nowhere/plots/metrics/val/mAP.tsv: no validation mAP curve"):
        convergence.read_curve(tmp_path / "nowhere")


def test_the_tail_is_the_last_fifth_of_the_epochs_rounded_up(tmp_path):
    curve = [10.0, 20.0, 30.0, 38.0, 39.0, 39.2, 39.4, 39.5, 39.6, 39.7, 40.0, 40.3]
    assert convergence.tail_epochs(12, 0.2) == 3 and convergence.tail_epochs(10, 0.2) == 2
    assert convergence.tail_gain(curve, 0.2) == pytest.approx(40.3 - 39.6)
    report = convergence.tail_report({"a": curve, "b": curve[:5], "c": curve[:1]},
                                     {"tail": 0.2, "tail_max_gain": 0.5})
    assert report["a"]["flat"] is False and report["a"]["tail_epochs"] == 3
    assert report["b"]["tail_gain"] == pytest.approx(1.0) and report["b"]["flat"] is False  # 39 - 38, one epoch
    assert report["c"]["tail_gain"] is None and report["c"]["flat"] is None  # one epoch: nothing to judge
    convergence.plot_curves({"c": curve[:1]}, report, tmp_path / "short.png")  # drawn, unjudged
    assert (tmp_path / "short.png").is_file()
    with pytest.raises(UserError, match="a run of 1 epochs has no epoch before its last 1"):
        convergence.tail_gain([5.0], 0.2)


def test_the_longer_run_multiplies_both_stages_and_is_judged_on_the_mean_gain(default_params):
    params = {**default_params, "student": {**default_params["student"], "epochs": 12},
              "distill": {**default_params["distill"], "features": {**default_params["distill"]["features"],
                                                                    "epochs": 3}}}
    assert convergence.longer_epochs(params, 1.5) == {"student.epochs": 18, "distill.features.epochs": 5}
    assert convergence.stage_epochs(params, "student_wo") == {"student.epochs": 12}
    verdict = convergence.longer_verdict([40.0, 41.0, 42.0], [41.0, 41.5, 42.0], 1.0)
    assert verdict["gain"] == pytest.approx(0.5) and verdict["gain_std"] == pytest.approx(0.5)
    assert verdict["converged"] is True
    assert convergence.longer_verdict([40.0], [41.0], 1.0)["converged"] is False  # 1.0 is not under 1.0
    text = convergence.longer_markdown({"ours": verdict}, {"ours": "w/"},
                                       {"ours": (convergence.stage_epochs(params, "student_w"),
                                                 convergence.longer_epochs(params, 1.5))}, [0, 1, 2], 1.0)
    assert "| w/ | 3 / 12 → 5 / 18 | 41.0 | 41.5 | +0.5 ± 0.5 (+1.00, +0.50, +0.00) | yes |" in text


def test_the_stage_plots_both_students_and_reports_their_tails(tmp_path, default_params):
    without = _live(tmp_path / "student_wo", [30.0, 36.0, 38.0, 39.9, 40.0])
    with_ = _live(tmp_path / "student_w", [35.0, 44.0, 47.0, 48.0, 50.0])
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(default_params))
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    subprocess.run([sys.executable, str(PROJECT / "stages" / "convergence.py"), "--params", str(params),
                    "--without", str(without), "--with", str(with_), "--figure", str(tmp_path / "c.png"),
                    "--report", str(tmp_path / "c.json")], check=True, env=env)
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["runs"]["S-Cls w/o"]["tail_gain"] == pytest.approx(0.1)  # one tail epoch of five
    assert report["runs"]["S-Cls w/ (ours)"] == {"epochs": 5, "val_mAP_last": 50.0, "tail_epochs": 1,
                                                 "tail_gain": 2.0, "flat": False}
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_trains_both_rows_short_and_longer_over_the_tables_seeds(tmp_path, monkeypatch):
    from wsdkd import cli
    from wsdkd.paper import tables

    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    base = tables.comparison_params(params, PROJECT / "workflow" / "tables.yaml")  # the tables' own schedule
    trained = []

    def fake_run_table(runs, dag_params, ws):
        out = {}
        for row, seed, p in runs:
            epochs = (p["student"]["epochs"], p["distill"]["features"]["epochs"])
            trained.append((row.name, seed, *epochs))
            # The longer run adds 0.4 mAP to the plain student and 2.0 to ours.
            extra = (0.4 if row.name == "baseline" else 2.0) * (p["student"]["epochs"] > base["student"]["epochs"])
            live = _live(tmp_path / "live" / f"{row.name}-{seed}-{epochs[0]}", [30.0 + extra, 35.0, 36.0 + extra])
            out.setdefault(row.name, []).append({"seed": seed, "mAP": 40.0 + seed + extra, "live": str(live)})
        return out

    monkeypatch.setattr(tables, "run_table", fake_run_table)
    assert cli.main(["convergence", "--params", str(PROJECT / "params.yaml"), "--tables",
                     str(PROJECT / "workflow" / "tables.yaml"), "--no-upstream", "--out", str(tmp_path)]) == 0
    short = (base["student"]["epochs"], base["distill"]["features"]["epochs"])
    assert short != (params["student"]["epochs"], params["distill"]["features"]["epochs"])
    longer = tuple(math.ceil(params["convergence"]["longer"] * e) for e in short)
    assert sorted(trained) == sorted((name, seed, *e) for name in ("baseline", "ours") for seed in (0, 1, 2)
                                     for e in (short, longer))
    report = json.loads((tmp_path / "convergence.json").read_text())["rows"]
    assert report["baseline"]["gain"] == pytest.approx(0.4) and report["baseline"]["converged"] is True
    assert report["ours"]["gain"] == pytest.approx(2.0) and report["ours"]["converged"] is False
    assert "| no |" in (tmp_path / "convergence.md").read_text()
    assert (tmp_path / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # every run's curve
