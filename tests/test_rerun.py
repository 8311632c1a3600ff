"""Two folders of kept table rows compared: records matched to rows by settings, the change starred by the rule."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PROJECT
from wsdkd.cli import main
from wsdkd.paper import rerun, tables

TABLES_FILE = PROJECT / "workflow" / "tables.yaml"


def _runs(default_params, table="table3"):
    rows, known = tables.load_tables(TABLES_FILE)
    base = tables.comparison_params(default_params, TABLES_FILE)
    return rerun.seeded_runs(list(tables.planned_runs(known[table], rows, base, TABLES_FILE)))


def _write(folder, runs, values):
    """One record per run, named as the real ones are not (by position): matching must not use the name."""
    folder.mkdir()
    for i, ((row, seed, params), value) in enumerate(zip(runs, values)):
        record = {"params": {k: params[k] for k in ("student", "distill")}, "mAP": value}
        if row.model == "student_w":
            record["features"] = f"experiments/features/{i}"
        (folder / f"{len(runs) - i:02d}.json").write_text(json.dumps(record))


def test_seeded_runs_drop_the_teacher_and_rows_two_tables_share(default_params):
    runs = _runs(default_params)
    assert [(row.name, seed) for row, seed, _ in runs] == [
        ("baseline", 0), ("baseline", 1), ("baseline", 2), ("ours", 0), ("ours", 1), ("ours", 2)]
    rows, known = tables.load_tables(TABLES_FILE)
    both = list(tables.planned_runs(known["table3"], rows, tables.comparison_params(default_params, TABLES_FILE),
                                    TABLES_FILE)) * 2
    assert len(rerun.seeded_runs(both)) == 6


def test_the_plain_student_and_ours_are_told_apart_though_their_settings_are_equal(default_params, tmp_path):
    runs = _runs(default_params)
    # table3's baseline and ours rows share every setting: only the record's stage 1 says which is which
    assert runs[0][2]["student"] == runs[3][2]["student"] and runs[0][2]["distill"] == runs[3][2]["distill"]
    _write(tmp_path / "old", runs, [48.0, 49.0, 50.0, 58.0, 59.0, 60.0])
    assert rerun.matched_runs(tmp_path / "old", runs, "mAP") == {"baseline": {0: 48.0, 1: 49.0, 2: 50.0},
                                                                 "ours": {0: 58.0, 1: 59.0, 2: 60.0}}


def test_a_change_is_starred_only_above_twice_the_pooled_std():
    labels = {"a": "row A", "b": "row B"}
    old = {"a": {0: 50.0, 1: 51.0, 2: 52.0}, "b": {0: 50.0, 1: 51.0, 2: 52.0}}
    # a: +3.0 against a pooled std of 1.0; b: +0.5 against sqrt((2 * 1 + 1 * 0.5) / 3) = 0.91
    new = {"a": {0: 53.0, 1: 54.0, 2: 55.0}, "b": {0: 51.0, 1: 52.0}}
    text = rerun.comparison_markdown(labels, [0, 1, 2], old, new, "mAP")
    lines = text.splitlines()
    assert lines[2] == ("| row A | 50.0 → 53.0 (+3.0) | 51.0 → 54.0 (+3.0) | 52.0 → 55.0 (+3.0) | 51.0 ± 1.0 | "
                        "54.0 ± 1.0 | +3.0 * (1.0) |")
    assert lines[3].endswith("| — | 51.0 ± 1.0 | 51.5 ± 0.7 | +0.5 (0.9) |")  # b has no seed 2 in the new set


def test_the_command_prints_the_rows_and_refuses_a_missing_folder(default_params, tmp_path, monkeypatch, capsys):
    runs = _runs(default_params)
    _write(tmp_path / "old", runs, [48.0, 49.0, 50.0, 58.0, 59.0, 60.0])
    _write(tmp_path / "new", runs[:3], [47.0, 48.0, 49.0])
    monkeypatch.chdir(PROJECT)
    assert main(["compare-rows", str(tmp_path / "old"), str(tmp_path / "new"), "table3"]) == 0
    out = capsys.readouterr().out
    assert "| 48.0 → 47.0 (-1.0) |" in out and "| 49.0 ± 1.0 | 48.0 ± 1.0 | -1.0 (1.0) |" in out
    assert "| 59.0 ± 1.0 | — | — |" in out  # ours was not retrained
    with pytest.raises(SystemExit) as exit_info:
        main(["compare-rows", str(tmp_path / "missing"), str(tmp_path / "new"), "table3"])
    assert exit_info.value.code == 2
    assert "missing: no such folder of row records" in capsys.readouterr().err
