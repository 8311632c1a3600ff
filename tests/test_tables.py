"""The paper's tables as runs: the table file, row overrides, the Markdown layout, and reuse of finished rows."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT
from wsdkd.evaluate import significance
from wsdkd.paper import tables
from wsdkd.pipeline.errors import UserError

TABLES_FILE = PROJECT / "workflow" / "tables.yaml"


def test_every_row_of_the_tables_file_is_a_valid_configuration(default_params):
    rows, known = tables.load_tables(TABLES_FILE)
    assert {"table1", "table2", "table3", "table4", "table5", "seeds"} <= set(known)
    for row in rows.values():
        params = tables.apply_overrides(default_params, row.overrides, row.name)
        for dotted, value in row.overrides.items():
            section, *keys = dotted.split(".")
            node = params[section]
            for key in keys:
                node = node[key]
            assert node == value
    assert known["seeds"].seeds == [0, 1, 2]


def test_a_table_naming_an_unknown_row_is_refused_with_the_file(tmp_path):
    path = tmp_path / "tables.yaml"
    path.write_text("rows: {ours: {label: x, set: {}}}\n"
                    "tables: {t: {title: t, paper_dataset: COCO, columns: [mAP], rows: {hinton: [71.3]}}}\n")
    with pytest.raises(UserError, match=f"{path}: table t names row 'hinton'"):
        tables.load_tables(path)


@pytest.mark.parametrize("dotted, message", [
    ("teacher.epochs", "only student, distill settings may change"),
    ("distill.features.no_such_key", "params.yaml has no such setting"),
    ("distill.predictions.lam", "lam"),  # a value the schema refuses
])
def test_overrides_outside_the_students_side_or_unknown_are_refused(default_params, dotted, message):
    value = -1.0 if dotted.endswith("lam") else 1
    with pytest.raises(UserError, match=message):
        tables.apply_overrides(default_params, {dotted: value}, "row x")


def test_overrides_leave_the_given_params_untouched(default_params):
    before = json.dumps(default_params, sort_keys=True)
    out = tables.apply_overrides(default_params, {"student.seed": 7, "distill.predictions.lam": 0.5}, "row x")
    assert out["student"]["seed"] == 7 and out["distill"]["predictions"]["lam"] == 0.5
    assert json.dumps(default_params, sort_keys=True) == before


def test_markdown_puts_ours_beside_the_papers_with_seed_means_significance_and_the_gain():
    table = tables.Table("t", "Table T", "MS-COCO", ["mAP", "F1_O"],
                         {"baseline": [70.9, 67.0], "ours": [74.6, 74.0], "teacher": [78.6, 0.0]}, [0, 1])
    rows = {"baseline": tables.Row("baseline", "w/o", {}, "student_wo"), "ours": tables.Row("ours", "w/", {}),
            "teacher": tables.Row("teacher", "T-WDet", {}, "teacher")}
    tuned = {"F1_C": 40.0, "tuned_F1_C": 45.0, "tuned_F1_O": 48.0}
    tail = {"val_tail_epochs": 3, "val_tail_flat": True}
    results = {"baseline": [{"seed": 0, "mAP": 60.0, "F1_O": 50.0, **tuned, **tail, "val_tail_gain": 0.2},
                            {"seed": 1, "mAP": 62.0, "F1_O": 52.0, **tuned, **tail, "val_tail_gain": 0.6,
                             "val_tail_flat": False}],
               "ours": [{"seed": 0, "mAP": 63.0, "F1_O": 55.0, **tuned, "tuned_F1_O": 50.0},
                        {"seed": 1, "mAP": 64.0, "F1_O": 55.0, **tuned}],
               "teacher": [{"mAP": 80.0, "F1_O": 70.0}]}
    text = tables.table_markdown(table, rows, results, "builtin")
    assert ("| Method | mAP ours | mAP paper | F1-O (0.5) ours | F1-O (0.5) paper | F1-C (0.5) ours "
            "| F1-C (val-tuned) ours | F1-O (val-tuned) ours |") in text
    assert "mean ± std over seeds 0, 1 (T-WDet: no seed, one run); paper: MS-COCO." in text
    # Mean and sample std of 60, 62; the first row is the reference, so it carries no star.
    assert "| w/o | 61.0 ± 1.4 | 70.9 | 51.0 ± 1.4 | 67.0 | 40.0 ± 0.0 | 45.0 ± 0.0 | 48.0 ± 0.0 |" in text
    # mAP: pooled std sqrt((2 + 0.5) / 2) = 1.12, and 2.5 > 2 x 1.12: starred. F1-O: 4.0 > 2 x 1.0: starred.
    # Tuned F1-O: 49 vs 48, pooled std sqrt(2 / 2) = 1.0: 1.0 is not above 2.0, no star.
    assert "| w/ | 63.5 ± 0.7 * | 74.6 | 55.0 ± 0.0 * | 74.0 | 40.0 ± 0.0 | 45.0 ± 0.0 | 49.0 ± 1.4 |" in text
    # One teacher run against two baseline seeds: pooled std is the baseline's 1.41; no tuned F1 was recorded.
    assert "| T-WDet | 80.0 * | 78.6 | 70.0 * | 0.0 | — | — | — |" in text
    assert "more than 2 x the two rows' pooled standard deviation" in text
    assert ("at the end of training, mean over seeds (flat: under convergence.tail_max_gain): w/o +0.4 over its "
            "last 3 epochs (flat in 1 of 2 runs).") in text  # only the rows whose curves were read
    assert "| mAP: row − column | w/o | w/ |" in text
    assert "| w/ | +2.5 * |  |" in text and "| T-WDet | +19.0 * | +16.5 * |" in text
    assert "| w/o | 60.00 | 62.00 |" in text  # per-seed mAP
    assert "gain (ours − baseline), mAP: 2.5 ± 0.7 points (per seed: +3.00, +2.00; paper: +3.7)" in text


@pytest.mark.parametrize("a, b, pooled, stars", [
    ([60.0, 62.0], [63.0, 64.0], math.sqrt(1.25), True),
    ([60.0, 62.0, 64.0], [63.0, 65.0, 67.0], 2.0, False),  # 3.0 is not above 2 x 2.0
    ([60.0], [70.0], None, False),  # two single runs: no spread to judge by
])
def test_a_difference_counts_only_above_twice_the_pooled_std(a, b, pooled, stars):
    assert significance.pooled_std(a, b) == (pytest.approx(pooled) if pooled is not None else None)
    assert significance.significant(a, b) is stars


def test_a_row_may_not_set_what_every_row_shares(tmp_path):
    path = tmp_path / "tables.yaml"
    path.write_text("rows: {fast: {label: x, set: {student.schedule: plateau, distill.features.lr: 1.0e-5}}}\n"
                    "tables: {}\n")
    with pytest.raises(UserError, match=f"{path}: row fast sets student.schedule, which every row of a table "
                                        "shares"):
        tables.load_tables(path)


def test_every_table_runs_seeds_0_1_2_unless_it_says_otherwise(default_params):
    rows, known = tables.load_tables(TABLES_FILE)
    assert all(table.seeds == [0, 1, 2] for table in known.values())
    runs = list(tables.planned_runs(known["table3"], rows, default_params, TABLES_FILE))
    assert [(row.name, seed) for row, seed, _ in runs] == [("baseline", 0), ("baseline", 1), ("baseline", 2),
                                                           ("teacher", None), ("ours", 0), ("ours", 1), ("ours", 2)]


def test_a_table_trains_each_row_once_and_reuses_it(tiny_manifest, tiny_upstream, default_params, tmp_path,
                                                     monkeypatch):
    import wsdkd.distill.training as distill
    import wsdkd.student.training as student

    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    params = json.loads(json.dumps(default_params))
    params["student"].update(backbone={"name": "efficientnet_lite0", "weights": "random", "weights_path": None},
                             input_size=32, epochs=1, batch_size=8, device="cpu", amp=False, seed=0)
    params["distill"]["features"]["epochs"] = 1
    dag = {name: tmp_path / "dag" / name for name in tables.MODELS}
    ws = tables.Workspace(tiny_manifest, tiny_upstream / "cache", tiny_upstream / "teacher", dag,
                          tmp_path / "experiments")
    table = tables.Table("t", "T", "MS-COCO", ["mAP"], {"baseline": [70.9], "hinton": [71.3], "ours": [74.6],
                                                         "teacher": [78.6]}, None)
    rows, _ = tables.load_tables(TABLES_FILE)
    runs = list(tables.planned_runs(table, rows, params, TABLES_FILE, seeds=[1]))
    assert [(row.name, seed) for row, seed, _ in runs] == [("baseline", 1), ("hinton", 1), ("ours", 1),
                                                           ("teacher", None)]
    # Seed 1 is not the DAG's seed 0: only the teacher's predictions come from the DAG.
    assert tables.dag_targets(runs, params, ws) == [ws.cache, dag["teacher"]]
    runs = runs[:-1]
    first = tables.run_table(runs, params, ws)
    assert [r["seed"] for r in first["ours"]] == [1] and 0 <= first["ours"][0]["mAP"] <= 100
    assert all((Path(runs_[0]["live"]) / "metrics.json").is_file() for runs_ in first.values())
    # Hinton and ours share stage 2's params but not stage 1; the plain student needs none.
    assert len(list(ws.experiments.glob("features/*/model.pt"))) == 2
    assert len(list(ws.experiments.glob("rows/*/metrics.json"))) == 3

    def no_training(*args, **kwargs):
        raise AssertionError("a finished row was trained again")

    monkeypatch.setattr(distill, "train_features", no_training)
    monkeypatch.setattr(distill, "train_distilled", no_training)
    monkeypatch.setattr(student, "train_student", no_training)
    assert tables.run_table(runs, params, ws) == first

    # A row with the DAG's own settings is read from the DAG's folder, not trained.
    ours = next(p for row, _, p in runs if row.name == "ours")
    dag_student = next(ws.experiments.glob("rows/*/student"))
    reused = tables.run_table([(rows["ours"], 1, ours)], ours,
                              dataclasses.replace(ws, dag={**dag, "student_w": dag_student}))
    assert reused["ours"][0]["dag"] == str(dag_student)


def test_a_rows_tail_is_read_from_its_training_curve(tmp_path):
    from tests.test_convergence import _live

    cfg = {"tail": 0.2, "tail_max_gain": 0.5}
    live = _live(tmp_path / "live", [30.0, 38.0, 39.0, 39.5, 40.5])
    assert tables._tail({"live": str(live)}, cfg) == {"val_tail_epochs": 1, "val_tail_gain": 1.0,
                                                      "val_tail_flat": False}
    assert tables._tail({"live": str(tmp_path / "none")}, cfg) == {}  # the teacher, or curves not kept
    assert tables._tail({"live": str(_live(tmp_path / "one", [30.0]))}, cfg) == {}  # one epoch: nothing to judge


def test_the_tables_files_settings_give_every_row_one_schedule(default_params, tmp_path):
    settings = yaml.safe_load(TABLES_FILE.read_text())["settings"]
    base = tables.comparison_params(default_params, TABLES_FILE)
    epochs = (settings["student.epochs"], settings["distill.features.epochs"])
    assert (base["student"]["epochs"], base["distill"]["features"]["epochs"]) == epochs
    assert base["student"]["lr"] == settings["student.lr"]
    # The tables train longer than params.yaml's quick run, which stays as it is.
    assert default_params["student"]["epochs"] < epochs[0]
    rows, known = tables.load_tables(TABLES_FILE)
    for row, _, params in tables.planned_runs(known["table1"], rows, base, TABLES_FILE):
        if row.model != "teacher":
            assert (params["student"]["epochs"], params["distill"]["features"]["epochs"]) == epochs
    bare = tmp_path / "tables.yaml"
    bare.write_text("rows: {}\ntables: {}\n")
    assert tables.comparison_params(default_params, bare) is default_params
    bad = tmp_path / "bad.yaml"
    bad.write_text("settings: {teacher.epochs: 3}\nrows: {}\ntables: {}\n")
    with pytest.raises(UserError, match="bad.yaml settings: override teacher.epochs"):
        tables.comparison_params(default_params, bad)
