"""The paper's tables as runs: each row is a configuration of the one distillation trainer (workflow/tables.yaml).

A student row is params.yaml with a few dotted overrides of ``student.*`` / ``distill.*`` and a seed. It is
trained in ``experiments/rows/<fingerprint>/`` (its stage 1 in ``experiments/features/<fingerprint>/``) on top
of the DAG's teacher and cache; the fingerprints cover the row's settings and the teacher's identity, so a rerun
reuses every finished row (and every finished stage 1, which rows share when their ``student`` and
``distill.features`` agree) and only trains what changed.
"""

from __future__ import annotations

import copy
import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..evaluate import convergence
from ..evaluate.reports import evaluate_folder
from ..evaluate.significance import FACTOR, significant
from ..pipeline import resume
from ..pipeline.atomic import write_text_atomic
from ..pipeline.config import validate_params
from ..pipeline.dag import tracked_settings
from ..pipeline.errors import UserError

log = logging.getLogger(__name__)

TUNABLE_SECTIONS = ("student", "distill")  # rows share one teacher, so only the student's side may change
# What every row of a comparison shares (issue 15): its epochs, schedule, model choice and seeds. A row may not
# set them (--set changes them for all rows); stage 1's lr may differ only by the rule tables.yaml documents.
SHARED_SETTINGS = ("student.epochs", "student.lr", "student.schedule", "student.warmup_epochs",
                   "student.lr_decay_factor", "student.lr_patience", "student.select", "student.seed",
                   "distill.features.epochs", "distill.features.schedule", "distill.features.warmup_epochs")
COLUMN_NAMES = {"mAP": "mAP", "F1_C": "F1-C (0.5)", "F1_O": "F1-O (0.5)", "top3_F1_C": "F1-C top-3",
                "top3_F1_O": "F1-O top-3", "tuned_F1_C": "F1-C (val-tuned)", "tuned_F1_O": "F1-O (val-tuned)"}
# Shown for every table beside the paper's columns (ours only): the fixed-threshold F1 understates students with
# softer scores, so the F1 at the threshold tuned on val stands beside it.
OURS_ONLY_COLUMNS = ("F1_C", "F1_O", "tuned_F1_C", "tuned_F1_O")
METRICS_FILE = "metrics.json"
# The DAG stages whose settings make what every row inherits (the dataset is keyed by its manifest's bytes).
UPSTREAM_STAGES = ("proposals", "train_teacher", "cache_teacher")


# The plain student (Eq. 10), the distilled one and the teacher, and the DAG's folders (under models/) of each.
DAG_FOLDERS = {"student_wo": "student_wo", "student_w": "student_w", "teacher": "teacher_predictions"}
MODELS = tuple(DAG_FOLDERS)


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    overrides: dict[str, Any]
    model: str = "student_w"


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    paper_dataset: str
    columns: list[str]
    rows: dict[str, list]  # row name -> the paper's numbers, one per column
    seeds: list[int] | None  # None: the seed params.yaml gives


@dataclass(frozen=True)
class Workspace:
    """Where a table's runs read their inputs and keep their outputs.

    ``dag`` maps each of MODELS to the DAG's own output folder: a row whose settings are the DAG's is read from
    there (Snakemake brings it up to date first) instead of being trained again.
    """

    manifest: Path
    cache: Path
    teacher: Path
    dag: dict[str, Path]
    experiments: Path
    live: dict[str, Path] = field(default_factory=dict)  # the DAG's dvclive folder of each student model
    inputs: Path | None = None  # the DAG's student_inputs (decoded images); None: rows decode the JPEGs
    # Every finished row's metrics file, also kept here (reports/tables/rows/<row key>.json, committed) so a
    # fresh clone, or a later session, reuses a row whose key (its settings and upstream) is unchanged, as it
    # reuses a row folder of experiments/. None: row folders only.
    records: Path | None = None

    def record_path(self, row_dir: Path) -> Path | None:
        return self.records / f"{row_dir.name}.json" if self.records is not None else None


def load_tables(path: Path) -> tuple[dict[str, Row], dict[str, Table]]:
    """Rows and tables of ``path``; a table naming an unknown row, or a row of the wrong length, is a UserError."""
    spec = yaml.safe_load(path.read_text())
    rows = {name: Row(name, r["label"], r.get("set", {}), r.get("model", "student_w"))
             for name, r in spec["rows"].items()}
    for row in rows.values():
        if row.model not in MODELS:
            raise UserError(f"{path}: row {row.name}: model {row.model!r} is not one of {', '.join(MODELS)}")
        if row.model != "student_w" and row.overrides:
            raise UserError(f"{path}: row {row.name}: only distilled students (model student_w) take overrides")
        shared = [key for key in row.overrides if key in SHARED_SETTINGS]
        if shared:
            raise UserError(f"{path}: row {row.name} sets {', '.join(shared)}, which every row of a table shares "
                            "(one schedule, model choice and seeds for all); change it for all rows with --set")
    tables = {}
    for name, t in spec["tables"].items():
        for row, paper in t["rows"].items():
            if row not in rows:
                raise UserError(f"{path}: table {name} names row {row!r}, which is not under rows:")
            if len(paper) != len(t["columns"]):
                raise UserError(f"{path}: table {name}, row {row}: {len(paper)} paper numbers for "
                                f"{len(t['columns'])} columns")
        unknown = [c for c in t["columns"] if c not in COLUMN_NAMES]
        if unknown:
            raise UserError(f"{path}: table {name}: unknown columns {unknown} (expected some of {list(COLUMN_NAMES)})")
        tables[name] = Table(name, t["title"], t["paper_dataset"], t["columns"], t["rows"],
                             t.get("seeds", spec.get("seeds")))
    return rows, tables


def file_seeds(path: Path) -> list[int] | None:
    """The seeds ``path`` gives every table that lists none of its own."""
    return yaml.safe_load(path.read_text()).get("seeds")


def comparison_params(params: dict, path: Path) -> dict:
    """``params`` with the ``settings:`` of ``path`` applied: the schedule every row of every table trains on."""
    settings = yaml.safe_load(path.read_text()).get("settings") or {}
    return apply_overrides(params, settings, f"{path} settings") if settings else params


def apply_overrides(params: dict, overrides: dict[str, Any], source: str) -> dict:
    """A validated copy of ``params`` with each dotted ``section.key`` of ``overrides`` set."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        if not parents or parents[0] not in TUNABLE_SECTIONS:
            raise UserError(f"{source}: override {dotted}: only {', '.join(TUNABLE_SECTIONS)} settings may change "
                            "between the rows of a table (they share one teacher)")
        node = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if not isinstance(node, dict) or leaf not in node:
            raise UserError(f"{source}: override {dotted}: params.yaml has no such setting")
        node[leaf] = value
    return validate_params(out, source)


def _digest_files(paths: list[Path]) -> str:
    return resume.fingerprint([resume.file_digest(path) for path in paths])


def upstream_identity(ws: Workspace, params: dict) -> tuple[str, str]:
    """What the rows inherit from the DAG: the dataset's manifest; and it with the settings that make the
    proposals, the teacher and its cache.

    Settings, not the teacher's bytes, as a student row is keyed by its settings: on another CPU the same
    settings train a teacher equal to this one up to floating-point rounding (the kernels differ: on two hosts
    the teacher's val mAP was 63.36 and 63.34) whose file digest differs, and a kept row
    (``Workspace.records``) trained on either is reused. After a change of code that alters results, delete the
    rows (experiments/ and reports/tables/rows/) to retrain them.
    """
    if not any(ws.teacher.glob("*.pt")):
        raise UserError(f"{ws.teacher}: no teacher model file; run the DAG up to the teacher cache first")
    data = _digest_files(sorted(ws.manifest.glob("*.json")) + sorted(ws.manifest.glob("*.parquet")))
    return data, resume.fingerprint(data, tracked_settings(params, UPSTREAM_STAGES))


def reuses_dag(row: Row, row_params: dict, dag_params: dict) -> bool:
    """Whether the DAG's own output is this row: the teacher always, a student when its settings are the DAG's."""
    return row.model == "teacher" or row_params == dag_params


def _headline(folder: Path, cfg: dict) -> dict:
    """The headline metrics of a model folder, as the evaluate stage computes them."""
    return evaluate_folder(folder, cfg)[0]


def finished_record(ws: Workspace, row_dir: Path) -> Path | None:
    """The metrics file of a finished row: its folder's, else the one kept under ``ws.records``; None if neither."""
    for path in (row_dir / METRICS_FILE, ws.record_path(row_dir)):
        if path is not None and path.is_file():
            return path
    return None


def _finished(ws: Workspace, row_dir: Path) -> dict | None:
    if (path := finished_record(ws, row_dir)) is not None:
        log.info("reusing %s (%s)", row_dir.name, path)
        return json.loads(path.read_text())
    return None


def _record(ws: Workspace, row_dir: Path, params: dict, extra: dict) -> dict:
    """Write the row's metrics, with its validation curve and tail (a kept record has no row folder to read
    them from), to its folder and to ``ws.records``."""
    metrics = {"params": {k: params[k] for k in ("student", "distill")}, "live": str(row_dir / "live"), **extra,
               **_headline(row_dir / "student", params["evaluate"])}
    metrics.update(_tail(metrics, params["convergence"]))
    metrics["val_curve"] = convergence.read_curve(row_dir / "live")
    text = json.dumps(metrics, indent=2) + "\n"
    write_text_atomic(row_dir / METRICS_FILE, text)
    if (kept := ws.record_path(row_dir)) is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(kept, text)
    return metrics


def _hardware(params: dict):
    """The loop's loader and memory-layout settings (params' ``train``); a table trains in one process."""
    from ..engine.loop import Hardware

    return Hardware.from_params(params["train"])


def _inputs_dir(ws: Workspace, params: dict) -> Path | None:
    """The DAG's decoded student inputs when they are at the row's ``student.input_size``; else None (JPEGs)."""
    from ..data.student_inputs import stored_size

    if ws.inputs is None or stored_size(ws.inputs) != params["student"]["input_size"]:
        return None
    return ws.inputs


def plain_row_dir(params: dict, ws: Workspace, data: str) -> Path:
    """Where the plain student of these settings is trained (keyed by them and the dataset)."""
    return ws.experiments / "rows" / resume.fingerprint(data, params["student"])


def distilled_row_dirs(params: dict, ws: Workspace, upstream: str) -> tuple[Path, Path]:
    """(stage 1's folder, the row's folder) of a distilled student; rows that agree on ``student`` and
    ``distill.features`` share the first."""
    features_key = resume.fingerprint(upstream, params["student"], params["distill"]["features"])
    row_key = resume.fingerprint(features_key, params["distill"]["predictions"])
    return ws.experiments / "features" / features_key, ws.experiments / "rows" / row_key


def has_features(features_dir: Path) -> bool:
    return (features_dir / "model.pt").is_file()


def run_plain_row(params: dict, ws: Workspace, data: str) -> dict:
    """Train (or reuse) the student without distillation (Eq. 10) with these settings."""
    from ..student.training import train_student  # torch only when a row trains

    row_dir = plain_row_dir(params, ws, data)
    if (done := _finished(ws, row_dir)) is not None:
        return done
    train_student(params["student"], ws.manifest, row_dir / "student", row_dir / "live", f"table-row-{row_dir.name}",
                  _hardware(params), _inputs_dir(ws, params))
    return _record(ws, row_dir, params, {})


def train_stage1(params: dict, ws: Workspace, upstream: str) -> Path:
    """Train (or reuse) a distilled row's stage 1 (Eq. 3-4); its folder."""
    from ..distill.training import train_features  # torch only when a row trains

    features_dir, _ = distilled_row_dirs(params, ws, upstream)
    if not has_features(features_dir):
        train_features(params["student"], params["distill"]["features"], ws.manifest, ws.cache, ws.teacher,
                       features_dir, features_dir.with_name(f"{features_dir.name}-live"),
                       f"table-features-{features_dir.name}", _hardware(params), _inputs_dir(ws, params))
    return features_dir


def run_distilled_row(params: dict, ws: Workspace, upstream: str) -> dict:
    """Train (or reuse) one distilled student: stage 1 (shared by rows that agree on it) then stage 2."""
    from ..distill.training import train_distilled  # torch only when a row trains

    _, row_dir = distilled_row_dirs(params, ws, upstream)
    if (done := _finished(ws, row_dir)) is not None:
        return done
    features_dir = train_stage1(params, ws, upstream)
    train_distilled(params["student"], params["distill"]["predictions"], ws.manifest, ws.cache, ws.teacher,
                    features_dir, row_dir / "student", row_dir / "live", f"table-row-{row_dir.name}",
                    _hardware(params), _inputs_dir(ws, params))
    return _record(ws, row_dir, params, {"features": str(features_dir)})


def planned_runs(table: Table, rows: dict[str, Row], params: dict, tables_path: Path,
                 seeds: list[int] | None = None) -> Iterator[tuple[Row, int | None, dict]]:
    """(row, seed, its params) of every run of the table; the teacher's row runs once, with no seed."""
    seeds = seeds or table.seeds or [params["student"]["seed"]]
    for name in table.rows:
        row = rows[name]
        if row.model == "teacher":
            yield row, None, params
            continue
        for seed in seeds:
            yield row, seed, apply_overrides(params, {**row.overrides, "student.seed": seed},
                                             f"{tables_path} row {name}")


def dag_targets(runs: list[tuple[Row, int | None, dict]], dag_params: dict, ws: Workspace) -> list[Path]:
    """What Snakemake must bring up to date first: the teacher cache, and the DAG outputs the table reuses."""
    targets = [ws.cache] + ([ws.inputs] if ws.inputs is not None else [])
    for row, _, row_params in runs:
        if reuses_dag(row, row_params, dag_params) and ws.dag[row.model] not in targets:
            targets.append(ws.dag[row.model])
    return targets


def run_table(runs: list[tuple[Row, int | None, dict]], dag_params: dict, ws: Workspace) -> dict[str, list[dict]]:
    """Each row's metrics, one entry per seed, trained here unless the DAG's output (or an earlier run) is it.

    ``dag_params`` are params.yaml's, which the DAG's outputs were made with."""
    data, upstream = upstream_identity(ws, dag_params)
    results: dict[str, list[dict]] = {}
    for row, seed, row_params in runs:
        log.info("row %s%s", row.name, "" if seed is None else f", seed {seed}")
        if reuses_dag(row, row_params, dag_params):
            folder = ws.dag[row.model]
            metrics = {"dag": str(folder), **_headline(folder, dag_params["evaluate"])}
            if row.model in ws.live:
                metrics["live"] = str(ws.live[row.model])
        elif row.model == "student_wo":
            metrics = run_plain_row(row_params, ws, data)
        else:
            metrics = run_distilled_row(row_params, ws, upstream)
        metrics = {**metrics, **_tail(metrics, dag_params["convergence"])}
        results.setdefault(row.name, []).append(metrics if seed is None else {"seed": seed, **metrics})
    return results


def val_curve(metrics: dict) -> list[float]:
    """A run's validation mAP per epoch: kept in its record, else read from its dvclive folder."""
    return metrics["val_curve"] if "val_curve" in metrics else convergence.read_curve(Path(metrics["live"]))


def _tail(metrics: dict, cfg: dict) -> dict:
    """What the run's last ``cfg['tail']`` of epochs added to its validation mAP (convergence.py), when its
    curve is there and long enough to judge."""
    live = metrics.get("live")
    if "val_curve" not in metrics and (live is None or not (Path(live) / convergence.CURVE).is_file()):
        return {}
    tail = convergence.tail_report({"run": val_curve(metrics)}, cfg)["run"]
    if tail["tail_gain"] is None:
        return {}
    return {"val_tail_epochs": tail["tail_epochs"], "val_tail_gain": tail["tail_gain"], "val_tail_flat": tail["flat"]}


def _tail_line(table: Table, rows: dict[str, Row], results: dict[str, list[dict]]) -> list[str]:
    """One sentence: what each row's last epochs added to validation mAP, mean over seeds."""
    parts = []
    for name in table.rows:
        gains = _values(results[name], "val_tail_gain")
        if gains:
            judged = [run for run in results[name] if "val_tail_gain" in run]
            flat = sum(run["val_tail_flat"] for run in judged)
            parts.append(f"{rows[name].label} {statistics.fmean(gains):+.1f} over its last "
                         f"{judged[0]['val_tail_epochs']} epochs (flat in {flat} of {len(judged)} runs)")
    return ["", "Validation mAP added at the end of training, mean over seeds (flat: under "
                "convergence.tail_max_gain): " + "; ".join(parts) + "."] if parts else []


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _values(runs: list[dict], column: str) -> list[float]:
    return [run[column] for run in runs if column in run]  # rows evaluated before a metric existed lack it


def _cell(runs: list[dict], reference: list[dict], column: str) -> str:
    """Mean ± std of ``column``, starred when it differs significantly from the reference row's."""
    values = _values(runs, column)
    if not values:
        return "—"
    others = _values(reference, column)
    star = " *" if runs is not reference and others and significant(values, others) else ""
    return _mean_std(values) + star


def _pairwise(table: Table, rows: dict[str, Row], results: dict[str, list[dict]], column: str) -> list[str]:
    """Every row's difference to every earlier row in ``column`` (row minus column), starred when significant."""
    names = list(table.rows)
    lines = ["| " + " | ".join([f"{COLUMN_NAMES[column]}: row − column"] + [rows[n].label for n in names[:-1]]) + " |",
             "|" + "---|" * len(names)]
    for i, name in enumerate(names[1:], start=1):
        mine = _values(results[name], column)
        cells = []
        for other in names[:i]:
            theirs = _values(results[other], column)
            diff = statistics.fmean(mine) - statistics.fmean(theirs)
            cells.append(f"{diff:+.1f}{' *' if significant(mine, theirs) else ''}")
        lines.append("| " + " | ".join([rows[name].label] + cells + [""] * (len(names) - 1 - i)) + " |")
    return lines


def table_markdown(table: Table, rows: dict[str, Row], results: dict[str, list[dict]], dataset: str) -> str:
    """The paper's layout: one line per method, each metric as ours beside the paper's, then our F1 at 0.5 and at
    the val-tuned threshold; the significance of every difference, and the seeds, follow."""
    extra = [c for c in OURS_ONLY_COLUMNS if c not in table.columns]
    header = (["Method"] + [f"{COLUMN_NAMES[c]} {who}" for c in table.columns for who in ("ours", "paper")]
              + [f"{COLUMN_NAMES[c]} ours" for c in extra])
    names = list(table.rows)
    reference = results[names[0]]
    seeds = sorted({run["seed"] for runs in results.values() for run in runs if "seed" in run})
    unseeded = [rows[name].label for name in names if "seed" not in results[name][0]]
    once = f" ({', '.join(unseeded)}: no seed, one run)" if unseeded else ""
    lines = [f"## {table.title}", "",
             f"Ours: the {dataset} test split, mean ± std over seeds {', '.join(map(str, seeds))}{once}; paper: "
             f"{table.paper_dataset}.",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, paper in table.rows.items():
        runs = results[name]
        cells = [rows[name].label]
        for column, theirs in zip(table.columns, paper):
            cells += [_cell(runs, reference, column), str(theirs)]
        cells += [_cell(runs, reference, column) for column in extra]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"\\* differs from the first row ({rows[names[0]].label}) by more than {FACTOR:g} x the two rows' "
                  "pooled standard deviation over seeds; a difference without a star is not significant (nor is "
                  "any between two single runs). F1 (0.5): at the paper's fixed threshold; F1 (val-tuned): at the "
                  "one threshold tuned on val for F1-O, which students with softer scores need (README).",
              *_tail_line(table, rows, results), "", *_pairwise(table, rows, results, table.columns[0])]
    seeded = {name: runs for name, runs in results.items() if "seed" in runs[0]}
    if any(len(runs) > 1 for runs in seeded.values()):
        lines += ["", "Per seed (mAP):", "", "| Method | " + " | ".join(f"seed {r['seed']}" for r in
                                                                       next(iter(seeded.values()))) + " |",
                  "|---|" + "---|" * len(next(iter(seeded.values())))]
        lines += [f"| {rows[name].label} | " + " | ".join(f"{r['mAP']:.2f}" for r in runs) + " |"
                  for name, runs in seeded.items()]
    if "baseline" in seeded and "ours" in seeded:
        gains = [o["mAP"] - b["mAP"] for o, b in zip(seeded["ours"], seeded["baseline"])]
        lines += ["", f"Distillation gain (ours − baseline), mAP: {_mean_std(gains)} points"
                      f" (per seed: {', '.join(f'{g:+.2f}' for g in gains)}; paper: "
                      f"{_paper_gain(table)})."]
    return "\n".join(lines) + "\n"


def _paper_gain(table: Table) -> str:
    ours, base = table.rows["ours"][0], table.rows["baseline"][0]
    if isinstance(ours, str):  # "COCO / NUS-WIDE" pairs, or "—" where the paper has no number
        pairs = zip(ours.split("/"), base.split("/"))
        try:
            return " / ".join(f"{float(o) - float(b):+.1f}" for o, b in pairs)
        except ValueError:
            return "not reported"
    return f"{ours - base:+.1f}"


def write_table(table: Table, rows: dict[str, Row], results: dict[str, list[dict]], dataset: str,
                out_dir: Path) -> Path:
    path = out_dir / f"{table.name}.md"
    write_text_atomic(path, table_markdown(table, rows, results, dataset))
    slim = {name: [{k: v for k, v in run.items() if k != "params"} for run in runs] for name, runs in results.items()}
    write_text_atomic(out_dir / f"{table.name}.json", json.dumps(slim, indent=2) + "\n")
    return path
