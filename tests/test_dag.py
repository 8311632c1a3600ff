"""One DAG for two engines: Snakemake's rules are DVC's stages, with the same edges and tracked params."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wsdkd.pipeline.dag import (REPORT_DIR, StageSpec, read_stages, record_in_dvc_lock, rule_name, snakemake_inputs,
                                 stage_edges, tracked_settings)
from wsdkd.pipeline.errors import UserError

from .conftest import PROJECT

BIN = Path(sys.executable).parent


def _dvc_edges(root: Path) -> set[tuple[str, str]]:
    from dvc.repo import Repo

    graph = Repo(str(root)).index.graph  # edges point from a stage to the stage it depends on
    return {(upstream.name, downstream.name) for downstream, upstream in graph.edges}


def _snakemake_edges(root: Path) -> tuple[set[str], set[tuple[str, str]]]:
    dot = subprocess.run([str(BIN / "snakemake"), "--rulegraph", "--forceall", "--quiet", "all"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.M))
    edges = {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M)}
    rules = set(labels.values()) - {"all"}
    return rules, {(a, b) for a, b in edges if "all" not in (a, b)}


def test_both_engines_see_the_same_stages_and_edges():
    specs = read_stages(PROJECT)
    dvc_edges = _dvc_edges(PROJECT)
    assert stage_edges(specs) == dvc_edges
    rules, snakemake_edges = _snakemake_edges(PROJECT)
    assert rules == {spec.rule_name for spec in specs}
    assert snakemake_edges == {(rule_name(a), rule_name(b)) for a, b in dvc_edges}
    assert dvc_edges, "the pipeline has edges"


def test_tracked_params_are_the_current_values():
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for spec in read_stages(PROJECT):
        assert spec.params, f"stage {spec.name} tracks no params"
        for key, value in spec.params.items():
            node = params
            for part in key.split("."):
                node = node[part]
            assert value == node


def test_foreach_stages_get_identifier_rule_names():
    assert rule_name("train@seed-1") == "train__seed__1"


def test_source_directories_become_their_files(tmp_path):
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("")
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_text("")
    producer = StageSpec("make", "true", (), ("out",), frozenset({"out"}))
    consumer = StageSpec("use", "true", ("pkg", "out", "x.py"), ("done",), frozenset())
    assert snakemake_inputs(consumer, [producer, consumer], tmp_path) == ["pkg/a.py", "out", "x.py"]


def _dvc_repo(root: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=root, check=True)


def test_directory_meta_must_name_an_output(tmp_path):
    _dvc_repo(tmp_path)
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": {
        "cmd": "true", "params": ["a"], "outs": ["o"], "meta": {"directories": ["elsewhere"]}}}}))
    with pytest.raises(UserError, match=r"stage 's': meta.directories names \['elsewhere'\]"):
        read_stages(tmp_path)


def test_the_evaluation_reports_are_named_after_the_dataset(tmp_path):
    _dvc_repo(tmp_path)
    (tmp_path / "dvc.yaml").write_text((PROJECT / "dvc.yaml").read_text())
    shutil.copytree(PROJECT / REPORT_DIR, tmp_path / REPORT_DIR)  # the captions dvc.yaml's meta names
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    assert params["dataset"]["report_name"] == "coco", "the built-in data keeps reports/coco_*"
    params["dataset"].update(source="nuswide", report_name="nuswide")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (evaluate,) = [spec for spec in read_stages(tmp_path) if spec.name == "evaluate"]
    assert set(evaluate.outs) == {"reports/nuswide_metrics.json", "reports/nuswide_evaluation.json",
                                  "reports/nuswide_per_class.md", "reports/nuswide_pr.png", "reports/nuswide_plots"}
    assert set(evaluate.report) == {"reports/nuswide_metrics.json", "reports/nuswide_per_class.md",
                                    "reports/nuswide_pr.png"}
    assert "--prefix reports/nuswide " in evaluate.cmd + " "


def test_recording_snakemakes_run_in_dvc_lock_leaves_the_outputs_untouched(tmp_path):
    """Relinked outputs get new mtimes in commit order, which made the next `snakemake` rerun stages."""
    _dvc_repo(tmp_path)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "make": {"cmd": "true", "outs": ["a.bin"]},
        "use": {"cmd": "true", "deps": ["a.bin"], "outs": ["b.bin"]}}}))
    (tmp_path / "a.bin").write_bytes(bytes(range(256)) * 64)
    before = (tmp_path / "a.bin").stat()
    specs = read_stages(tmp_path)

    assert record_in_dvc_lock(specs, tmp_path, str(BIN / "dvc")) == ["make"], "b.bin was never built"
    after = (tmp_path / "a.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"make"} and lock["stages"]["make"]["outs"][0]["path"] == "a.bin"


def _one_stage_repo(root: Path, report: list) -> None:
    _dvc_repo(root)
    (root / "params.yaml").write_text("a: 1\n")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": {
        "cmd": "true", "params": ["a"], "outs": ["o.png"], "meta": {"report": report}}}}))


def test_reported_outputs_get_their_caption_and_category(tmp_path):
    _one_stage_repo(tmp_path, [{"out": "o.png", "caption": "o.rst", "category": "Figures"}])
    (tmp_path / REPORT_DIR).mkdir(parents=True)
    (tmp_path / REPORT_DIR / "o.rst").write_text("A figure.\n")
    (spec,) = read_stages(tmp_path)
    assert spec.report == {"o.png": {"caption": "workflow/report/o.rst", "category": "Figures"}}
    assert spec.log == "logs/s.log"


def test_a_report_entry_must_name_an_output_and_an_existing_caption(tmp_path):
    wrong_out, no_caption = tmp_path / "a", tmp_path / "b"
    wrong_out.mkdir(), no_caption.mkdir()
    _one_stage_repo(wrong_out, [{"out": "elsewhere.png", "caption": "o.rst", "category": "Figures"}])
    with pytest.raises(UserError, match=r"stage 's': meta.report names 'elsewhere.png', which is not an output"):
        read_stages(wrong_out)
    _one_stage_repo(no_caption, [{"out": "o.png", "caption": "missing.rst", "category": "Figures"}])
    with pytest.raises(UserError, match=r"caption workflow/report/missing.rst of o.png not found"):
        read_stages(no_caption)


def test_tracked_settings_nest_what_the_named_stages_track(tmp_path):
    _dvc_repo(tmp_path)
    (tmp_path / "params.yaml").write_text("teacher: {epochs: 2}\ntrain: {devices: 1, workers: 3}\nother: 4\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "fit": {"foreach": ["a", "b"], "do": {"cmd": "true", "params": ["teacher", "teacher.epochs"],
                                               "outs": ["o${item}"]}},
        "cache": {"cmd": "true", "params": ["train.devices"], "outs": ["c"]},
        "later": {"cmd": "true", "params": ["other"], "outs": ["l"]}}}))
    params = {"teacher": {"epochs": 5, "lr": 0.1}, "train": {"devices": 2, "workers": 3}, "other": 4}
    settings = tracked_settings(params, ("fit", "cache"), tmp_path)
    assert settings == {"teacher": {"epochs": 5, "lr": 0.1}, "train": {"devices": 2}}, "values from params"
    settings["teacher"]["epochs"] = 9
    assert params["teacher"]["epochs"] == 5, "a copy, not the caller's params"
    with pytest.raises(UserError, match=r"dvc.yaml: no stage named \['nowhere'\]"):
        tracked_settings(params, ("fit", "nowhere"), tmp_path)
