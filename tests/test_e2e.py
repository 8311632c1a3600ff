"""The whole DAG on a few images, under Snakemake and under DVC, in a scratch copy of this working tree.

Checks what a user relies on: the main target builds, a second run of either tool does nothing, changing a
student param reruns only the students and what reads them, under both tools, and a paper table runs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import PROJECT

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
TARGET = "reports/coco_metrics.json"  # the headline file; the default target `all` builds every stage


def tiny_params(params: dict) -> dict:
    """The default params shrunk to a run of about a minute on 2 cores."""
    builtin = params["dataset"]["builtin"]
    builtin.update(num_train=24, num_test=12, image_size=96)
    params["dataset"]["val_fraction"] = 0.25
    params["proposals"]["num_proposals"] = 30
    params["teacher"].update(epochs=1, batch_size=8, scales=[96], cache_scale=96)
    params["student"].update(epochs=1, batch_size=8, input_size=32)
    params["distill"]["features"]["epochs"] = 1
    return params


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONDONTWRITEBYTECODE": "1"}

    def run(self, *cmd: str) -> str:
        result = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout + result.stderr

    def snakemake(self, *args: str) -> str:
        return self.run("snakemake", "--cores", "2", *args)

    def snakemake_planned_rules(self) -> set[str]:
        out = self.snakemake("--dry-run")
        if "Nothing to be done" in out:
            return set()
        table = out.split("Job stats:", 1)[1]
        return {m for m in re.findall(r"^(\w+)\s+\d+\s*$", table, flags=re.M)} - {"job", "total", "all"}

    def dvc_stages_run(self, out: str) -> set[str]:
        return set(re.findall(r"Running stage '([^']+)'", out))

    def match_tables_schedule(self) -> None:
        """Make the tables' shared schedule (tables.yaml ``settings:``) params.yaml's, as it is now: so the DAG's
        students are the tables' seed-0 rows."""
        params = yaml.safe_load((self.root / "params.yaml").read_text())
        path = self.root / "workflow" / "tables.yaml"
        spec = yaml.safe_load(path.read_text())
        spec["settings"] = {key: functools.reduce(dict.get, key.split("."), params) for key in spec.get("settings", {})}
        path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))

    def set_param(self, section: str, key: str, value) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        params[section][key] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_outputs(source: Path) -> set[str]:
    """What running the DAG leaves in ``source``, files or folders, which a scratch workspace must not inherit:
    every stage output, DVC's ``.gitignore`` beside them, ``dvc.lock`` and the stage logs, tracked or not (the
    reference run commits some of them)."""
    from wsdkd.pipeline.dag import LOG_DIR, read_stages

    outs = {out for spec in read_stages(source) for out in spec.outs}
    return outs | {"dvc.lock", LOG_DIR} | {str(Path(out).parent / ".gitignore") for out in outs if "/" in out}


def source_files(source: Path) -> list[str]:
    """The files of ``source``'s working tree, uncommitted work included, less the outputs of any run there: so
    `make run` then `make test` in one checkout tests the same as in a fresh clone."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=source,
                           capture_output=True, text=True, check=True).stdout.split()
    outputs = run_outputs(source)
    return [name for name in files if (source / name).is_file()
            and not any(name == out or name.startswith(out + "/") for out in outputs)]


def scratch_workspace(root: Path, source: Path = PROJECT) -> Workspace:
    """A git repository at ``root`` holding ``source``'s files (:func:`source_files`), with the tiny params."""
    for name in source_files(source):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, root / name)
    params = tiny_params(yaml.safe_load((root / "params.yaml").read_text()))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ws = Workspace(root)
    ws.run("git", "init", "-q")
    ws.run("git", "add", "-A")
    ws.run("git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "scratch")
    return ws


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return scratch_workspace(tmp_path_factory.mktemp("e2e") / "repo")


def test_snakemake_builds_the_whole_dag_with_real_numbers(workspace):
    out = workspace.snakemake()
    metrics = json.loads((workspace.root / TARGET).read_text())
    assert set(metrics) == {"wo", "teacher", "w"}, "the metrics file holds the three models only"
    assert set(metrics["w"]) == {"mAP", "F1_C", "F1_O", "top3_F1_C", "top3_F1_O", "tuned_F1_C", "tuned_F1_O"}
    evaluation = json.loads((workspace.root / "reports/coco_evaluation.json").read_text())
    assert evaluation["dataset"] == {"source": "builtin", "split": "test", "num_images": 12, "num_classes": 12}
    student = metrics["wo"]
    assert 0 < student["mAP"] <= 100 and 0 <= student["F1_O"] <= 100
    assert evaluation["student_wo"]["mAP"] == student["mAP"] and "P_C" in evaluation["student_wo"]
    assert (workspace.root / "reports/coco_per_class.md").read_text().startswith("### student_wo")
    assert (workspace.root / "reports/coco_pr.png").read_bytes()[:4] == b"\x89PNG"
    assert (workspace.root / "reports/student_wo/plots/metrics").is_dir()
    assert 0 < metrics["teacher"]["mAP"] <= 100, "the teacher is scored beside the student"
    assert 0 < metrics["w"]["mAP"] <= 100, "and the distilled student beside both"
    assert evaluation["student_w"]["model"]["distillation"]["soft_loss"] == "class_aware_l2"
    for figure in ("figure3", "figure4"):
        assert (workspace.root / f"reports/{figure}.png").read_bytes()[:4] == b"\x89PNG"
    detection = json.loads((workspace.root / "reports/teacher_detection.json").read_text())
    assert 0 <= detection["test"]["corloc"] <= 100
    teacher = json.loads((workspace.root / "reports/teacher_metrics.json").read_text())
    assert teacher == {split: {"corloc": detection[split]["corloc"], "box_ap": detection[split]["box_ap"]}
                       for split in ("val", "test")}
    for split in ("train", "val", "test"):
        recall = json.loads((workspace.root / f"reports/proposals/recall_{split}.json").read_text())
        assert 0 < recall["overall"]["recall@0.5"] <= 1
        compared = json.loads((workspace.root / f"reports/proposals/metrics_{split}.json").read_text())
        assert compared == {"recall@0.5": recall["overall"]["recall@0.5"], "recall@0.7": recall["overall"]["recall@0.7"]}
    for model in ("student_wo", "teacher", "student_w"):
        pr = (workspace.root / f"reports/coco_plots/pr_{model}.csv").read_text().splitlines()
        assert pr[0] == "recall,precision" and len(pr) == 1 + 101
    # Each stage's output went to its log; the console kept one line per stage and no progress frames.
    assert "\r" not in out and (workspace.root / "logs/train_student.log").read_text().count("\n") < 100
    assert "epoch 1/1" in (workspace.root / "logs/train_student.log").read_text()
    assert re.search(r"^evaluate: .*student_w: mAP", out, flags=re.M), out[-2000:]


def test_the_snakemake_report_holds_every_figure_and_metrics_file(workspace):
    from wsdkd.pipeline.dag import read_stages

    workspace.snakemake("--report", "reports/report.html")
    html = (workspace.root / "reports/report.html").read_text()
    reported = [out for spec in read_stages(workspace.root) for out in spec.report]
    assert len(reported) >= 15  # 3 recall plots + 3 proposal metrics, 4 training curves, evaluation 3, figures 2, ...
    for out in reported:
        assert Path(out).name in html, f"{out} is missing from the report"
    assert "Figure 4" in html and "Training curves of one trainer" in html, "with the captions of workflow/report"


def test_second_runs_are_no_ops_under_both_tools(workspace):
    assert "up to date" in workspace.run("dvc", "status"), "Snakemake's run is recorded in dvc.lock"
    assert workspace.snakemake_planned_rules() == set()
    assert workspace.dvc_stages_run(workspace.run("dvc", "repro")) == set()


STUDENT_SIDE = {"train_student", "distill_features", "train_distilled", "evaluate", "figures", "convergence"}


def test_a_student_param_reruns_only_the_students_and_what_reads_them(workspace):
    workspace.set_param("student", "lr", 0.02)
    assert workspace.snakemake_planned_rules() == STUDENT_SIDE
    status = workspace.run("dvc", "status")
    assert "train_student" in status and "dataset:" not in status
    assert workspace.dvc_stages_run(workspace.run("dvc", "repro")) == STUDENT_SIDE
    workspace.snakemake("--touch")  # what the README says to do after `dvc repro`
    assert workspace.snakemake_planned_rules() == set()
    assert workspace.dvc_stages_run(workspace.run("dvc", "repro")) == set()


def test_metrics_diff_compares_runs(workspace):
    out = workspace.run("dvc", "metrics", "show", "--json")
    assert all(f'"{name}"' in out for name in ("wo", "teacher", "w", "mAP"))
    assert "annotations" not in out and "num_images" not in out, "paths and counts are reports, not metrics"


def test_a_paper_table_reuses_the_dag_and_trains_other_seeds_once(workspace):
    workspace.match_tables_schedule()
    out = workspace.run("wsdkd", "table", "table3", "--seeds", "0", "--cores", "2")  # default: seeds 0, 1, 2
    table = (workspace.root / "reports/tables/table3.md").read_text()
    assert table.strip() in out  # printed as written
    for label in ("S-Cls w/o distillation", "T-WDet", "S-Cls w/ distillation", "Distillation gain (ours − baseline)"):
        assert label in table
    # With params.yaml's own settings every row is an output of the DAG: read, not trained again.
    results = json.loads((workspace.root / "reports/tables/table3.json").read_text())
    assert all("dag" in run for runs in results.values() for run in runs)
    assert results["ours"][0]["mAP"] == json.loads((workspace.root / TARGET).read_text())["w"]["mAP"]
    assert not (workspace.root / "experiments").exists()
    # Another seed trains both students once, under experiments/; a rerun only reads them.
    workspace.run("wsdkd", "table", "table3", "--seeds", "1", "--cores", "2")
    assert len(list((workspace.root / "experiments/rows").glob("*/metrics.json"))) == 2
    again = workspace.run("wsdkd", "table", "table3", "--seeds", "1", "--cores", "2")
    assert "reusing" in again and "epoch 1/1" not in again


SCREEN = 200  # characters: the width `dvc exp show --only-changed` is measured at (README, "Comparing runs")
EXP_SHOW = ("dvc", "exp", "show", "--only-changed")


def widest_line(workspace: Workspace, *cmd: str) -> tuple[int, str]:
    """A command's output without a terminal, COLUMNS fixed at :data:`SCREEN`: its widest line, and the output."""
    result = subprocess.run(cmd, cwd=workspace.root,
                            env={**workspace.env, "COLUMNS": str(SCREEN)}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return max(len(line) for line in result.stdout.splitlines()), result.stdout


def test_a_one_param_experiment_shows_each_changed_number(workspace):
    workspace.snakemake()  # the run the tests above built, committed as a user commits theirs
    workspace.run("git", "add", "-A")
    workspace.run("git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "run")
    before = json.loads((workspace.root / TARGET).read_text())
    workspace.run("dvc", "exp", "run", "-S", "student.epochs=2")
    after = json.loads((workspace.root / TARGET).read_text())
    changed = [f"{model}.{key}" for model in after for key in after[model] if after[model][key] != before[model][key]]
    assert {"wo.mAP", "w.mAP"} <= set(changed) and not any(name.startswith("teacher.") for name in changed)
    # Without a pager DVC squeezes the table into the terminal (collapsed columns print as "…"): each student's
    # mAP stays in sight.
    width, table = widest_line(workspace, *EXP_SHOW, "--no-pager")
    header = table.splitlines()[1].split()
    assert width <= SCREEN and {"wo.mAP", "w.mAP"} <= set(header), table
    # The whole table (what the pager scrolls through): every changed number and the param; the changed model
    # folders' and curves' hashes make it wider than a screen (README: 411 characters on this run; a longer
    # experiment name or a date for a time adds a few).
    width, table = widest_line(workspace, *EXP_SHOW)
    header = table.splitlines()[1].split()
    assert set(changed) | {"student.epochs"} <= set(header) and width <= 450, table
    # `make compare`, the README's narrower view, fits, nothing collapsed.
    width, table = widest_line(workspace, "make", "-s", "compare")
    header = table.splitlines()[1].split()
    assert width <= SCREEN and "…" not in header, table
    assert {"wo.mAP", "wo.F1_C", "wo.F1_O", "w.mAP", "w.F1_C", "w.F1_O", "student.epochs"} <= set(header), table
