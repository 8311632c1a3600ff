"""Training table rows side by side: each training planned once, stage 2 after its stage 1, results reused."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_tables import TABLES_FILE
from wsdkd.paper import row_pool, tables
from wsdkd.pipeline.dag import tracked_settings


def _tiny(default_params: dict) -> dict:
    params = json.loads(json.dumps(default_params))
    params["student"].update(backbone={"name": "efficientnet_lite0", "weights": "random", "weights_path": None},
                             input_size=32, epochs=1, batch_size=8, device="cpu", amp=False, seed=0)
    params["distill"]["features"]["epochs"] = 1
    return params


def _runs(params: dict, names: list[str], seeds: list[int]):
    rows, _ = tables.load_tables(TABLES_FILE)
    table = tables.Table("t", "T", "MS-COCO", ["mAP"], {name: [0.0] for name in names}, None)
    return list(tables.planned_runs(table, rows, params, TABLES_FILE, seeds=seeds))


def _workspace(tmp_path: Path, tiny_manifest: Path, tiny_upstream: Path) -> tables.Workspace:
    dag = {name: tmp_path / "dag" / name for name in tables.MODELS}
    return tables.Workspace(tiny_manifest, tiny_upstream / "cache", tiny_upstream / "teacher", dag,
                            tmp_path / "experiments")


def test_each_training_is_planned_once_and_stage_2_waits_for_its_stage_1(tiny_manifest, tiny_upstream,
                                                                         default_params, tmp_path):
    params = _tiny(default_params)
    ws = _workspace(tmp_path, tiny_manifest, tiny_upstream)
    # Two tables asking for the same rows; hinton and class_aware share stage 1 (none), ours has its own.
    runs = _runs(params, ["baseline", "hinton", "class_aware", "ours", "teacher"], [1])
    tasks = row_pool.plan_tasks(runs + runs, params, ws)
    kinds = [(task.label, task.kind) for task in tasks]
    assert kinds == [("baseline, seed 1", "plain"), ("stage 1 of hinton, seed 1", "features"),
                     ("hinton, seed 1", "distilled"), ("class_aware, seed 1", "distilled"),
                     ("stage 1 of ours, seed 1", "features"), ("ours, seed 1", "distilled")]
    by_label = {task.label: task for task in tasks}
    assert by_label["hinton, seed 1"].after == by_label["class_aware, seed 1"].after == \
        by_label["stage 1 of hinton, seed 1"].key
    assert by_label["ours, seed 1"].after == by_label["stage 1 of ours, seed 1"].key
    assert by_label["baseline, seed 1"].after is None
    # A row with the DAG's settings (seed 0 here is params' own seed) is the DAG's: nothing to train.
    assert row_pool.plan_tasks(_runs(params, ["baseline", "ours"], [0]), params, ws) == []


def _task(key: str, kind: str, after: str | None = None) -> row_pool.Task:
    return row_pool.Task(key, kind, key, {}, after)


def test_ready_stage_1s_start_before_other_tasks_and_a_stage_2_waits_for_its_own():
    plain, s1 = _task("plain", row_pool.PLAIN), _task("s1", row_pool.FEATURES)
    s2 = _task("s2", row_pool.DISTILLED, "s1")
    other = _task("other", row_pool.DISTILLED)  # its stage 1 is none: ready at once
    late_s1 = _task("late s1", row_pool.FEATURES)
    waiting = [plain, other, s1, s2, late_s1]
    assert [t.key for t in row_pool.next_tasks(waiting, set(), 1)] == ["s1"]
    assert [t.key for t in row_pool.next_tasks(waiting, set(), 3)] == ["s1", "late s1", "plain"]
    assert [t.key for t in row_pool.next_tasks([plain, other, s2], {"s1"}, 5)] == ["plain", "other", "s2"]
    assert row_pool.next_tasks([s2], set(), 2) == [] and row_pool.next_tasks(waiting, set(), 0) == []


def test_rows_trained_in_two_processes_are_read_back_without_training(tiny_manifest, tiny_upstream,
                                                                      default_params, tmp_path, monkeypatch):
    import wsdkd.distill.training as distill
    import wsdkd.student.training as student

    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    params = _tiny(default_params)
    ws = _workspace(tmp_path, tiny_manifest, tiny_upstream)
    runs = _runs(params, ["baseline", "hinton", "ours"], [1])
    assert row_pool.train_rows(runs, params, ws, jobs=2) == 5  # 1 plain, 2 stage 1, 2 stage 2
    assert row_pool.plan_tasks(runs, params, ws) == []
    assert row_pool.train_rows(runs, params, ws, jobs=2) == 0

    def no_training(*args, **kwargs):
        raise AssertionError("a row the pool trained was trained again")

    monkeypatch.setattr(distill, "train_features", no_training)
    monkeypatch.setattr(distill, "train_distilled", no_training)
    monkeypatch.setattr(student, "train_student", no_training)
    results = tables.run_table(runs, params, ws)
    assert set(results) == {"baseline", "hinton", "ours"}
    assert all(0 <= runs_[0]["mAP"] <= 100 for runs_ in results.values())


def test_one_job_leaves_the_training_to_the_table(tiny_manifest, tiny_upstream, default_params, tmp_path):
    params = _tiny(default_params)
    ws = _workspace(tmp_path, tiny_manifest, tiny_upstream)
    assert row_pool.train_rows(_runs(params, ["baseline"], [1]), params, ws, jobs=1) == 0
    assert not ws.experiments.exists()


def test_kept_records_let_a_fresh_experiments_folder_reuse_finished_rows(tiny_manifest, tiny_upstream,
                                                                          default_params, tmp_path, monkeypatch):
    import dataclasses

    import wsdkd.distill.training as distill
    import wsdkd.student.training as student

    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    params = _tiny(default_params)
    ws = dataclasses.replace(_workspace(tmp_path, tiny_manifest, tiny_upstream), records=tmp_path / "records")
    runs = _runs(params, ["baseline", "class_aware"], [1])
    trained = tables.run_table(runs, params, ws)
    kept = sorted(p.name for p in (tmp_path / "records").iterdir())
    assert len(kept) == 2  # one record per row key, written beside the row's own folder

    def no_training(*args, **kwargs):
        raise AssertionError("a row kept in the records was trained again")

    monkeypatch.setattr(distill, "train_features", no_training)
    monkeypatch.setattr(distill, "train_distilled", no_training)
    monkeypatch.setattr(student, "train_student", no_training)
    fresh = dataclasses.replace(ws, experiments=tmp_path / "fresh-clone-experiments")  # as in a fresh clone
    assert row_pool.plan_tasks(runs, params, fresh) == []
    reused = tables.run_table(runs, params, fresh)
    for name in ("baseline", "class_aware"):
        assert reused[name][0]["mAP"] == trained[name][0]["mAP"]
        assert tables.val_curve(reused[name][0]) == tables.val_curve(trained[name][0])  # kept: no live folder
        assert len(reused[name][0]["val_curve"]) == params["student"]["epochs"]
    assert not fresh.experiments.exists()


def test_rows_are_keyed_by_the_teachers_settings_not_its_bytes(tiny_manifest, tiny_upstream, default_params,
                                                                tmp_path):
    import dataclasses
    import shutil

    params = _tiny(default_params)
    ws = _workspace(tmp_path, tiny_manifest, tiny_upstream)
    data, upstream = tables.upstream_identity(ws, params)
    # The same settings on another CPU give a teacher equal up to rounding, with other bytes: same key.
    other = tmp_path / "teacher-from-another-host"
    shutil.copytree(ws.teacher, other)
    (other / "model.pt").write_bytes((other / "model.pt").read_bytes() + b"\0")
    assert tables.upstream_identity(dataclasses.replace(ws, teacher=other), params) == (data, upstream)
    # Another teacher setting, another cache setting or another number of GPUs: another upstream, same data.
    def changed(section: str, key: str, value) -> dict:
        out = json.loads(json.dumps(params))
        out[section][key] = value
        return out

    for section, key, value in (("teacher", "epochs", 3), ("cache", "num_selected", 7), ("train", "devices", 2),
                                ("proposals", "num_proposals", 9)):
        other_data, other_upstream = tables.upstream_identity(ws, changed(section, key, value))
        assert other_data == data and other_upstream != upstream, key
    # A setting that only changes speed does not.
    assert tables.upstream_identity(ws, changed("train", "eval_batch_size", 7))[1] == upstream
    # The settings are those dvc.yaml's upstream stages track; the kept rows' keys were made from exactly these.
    assert tracked_settings(params, tables.UPSTREAM_STAGES) == {
        "proposals": params["proposals"], "teacher": params["teacher"], "cache": params["cache"],
        "train": {"devices": params["train"]["devices"], "memory_cap_gb": params["train"]["memory_cap_gb"]}}
