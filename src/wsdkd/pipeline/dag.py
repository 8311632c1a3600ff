"""One pipeline definition for two engines: read ``dvc.yaml`` through DVC's own parser for Snakemake.

``dvc.yaml`` is the single source of truth. DVC resolves its ``vars``, ``${}`` interpolation and ``foreach``
loops; this module turns each resolved stage into what a Snakemake rule needs (inputs, outputs, the values of
the params it tracks, the command), so both tools see the same stages, the same edges, and rerun a stage on
the same param changes. What a stage asks a cluster for (memory, time, GPUs) is declared beside the DAG, in
``workflow/resources.yaml``, and becomes the rule's ``resources``; its cores are its ``threads`` in dvc.yaml.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import UserError

# Snakemake rule names are Python identifiers; DVC's foreach stages are named "stage@key".
_NOT_IDENTIFIER = re.compile(r"\W")
RESOURCES_FILE = "workflow/resources.yaml"
LOG_DIR = "logs"  # each rule's log: logs/<rule name>.log
REPORT_DIR = "workflow/report"  # the Snakemake report's captions, one .rst per reported output


@dataclass(frozen=True)
class StageSpec:
    """A resolved DVC stage, as Snakemake needs it."""

    name: str  # DVC's name, e.g. "train@1"
    cmd: str
    deps: tuple[str, ...]  # file and directory dependencies, as written in dvc.yaml
    outs: tuple[str, ...]  # every output, metrics and plots included
    directories: frozenset[str]  # outputs that are directories (declared in the stage's meta)
    params: dict = field(default_factory=dict)  # dotted key -> current value, for every tracked param
    threads: int = 1
    resources: dict = field(default_factory=dict)  # Snakemake resources: mem_mb, runtime (minutes), gpu, ...
    report: dict = field(default_factory=dict)  # output -> report() arguments (caption, category, ...)

    @property
    def rule_name(self) -> str:
        return rule_name(self.name)

    @property
    def log(self) -> str:
        """Where Snakemake sends the stage's output (the console keeps one line per stage)."""
        return f"{LOG_DIR}/{self.rule_name}.log"


def rule_name(stage_name: str) -> str:
    """The Snakemake rule name of a DVC stage ("train@1" -> "train__1")."""
    return _NOT_IDENTIFIER.sub("__", stage_name)


def _lookup(tree: dict, dotted: str, params_file: str):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"{params_file}: dvc.yaml tracks param '{dotted}', which is not there")
        node = node[part]
    return node


def read_resources(path: Path, stage_names: set[str]) -> dict[str, dict]:
    """Stage name -> its resources, from ``path`` (none when the file is absent); a foreach stage's entry, under
    its dvc.yaml name, covers every item. A name that is no stage is an error: it would silently apply nowhere."""
    if not path.is_file():
        return {}
    entries = yaml.safe_load(path.read_text()) or {}
    if not isinstance(entries, dict):
        raise UserError(f"{path}: expected a mapping of stage name to resources")
    for name, resources in entries.items():
        if name not in stage_names:
            raise UserError(f"{path}: {name!r} is not a stage of dvc.yaml (stages: {', '.join(sorted(stage_names))})")
        if not isinstance(resources, dict) or not all(isinstance(v, (int, str)) for v in resources.values()):
            raise UserError(f"{path}: {name}: expected a mapping of resource name to a number or text")
    return entries


def read_stages(root: str | Path = ".") -> list[StageSpec]:
    """Every stage of ``root/dvc.yaml``, resolved by DVC, in DVC's order."""
    from dvc.repo import Repo  # imported here: it is slow, and only the DAG readers need it

    root = Path(root)
    repo = Repo(str(root))
    resources = read_resources(root / RESOURCES_FILE, {_base_name(s.name) for s in repo.index.stages})
    params_cache: dict[str, dict] = {}
    specs = []
    for stage in repo.index.stages:
        meta = stage.meta or {}
        params, deps = {}, []
        for dep in stage.deps:
            keys = getattr(dep, "params", None)
            if keys is None:
                deps.append(str(dep.def_path))
                continue
            path = str(dep.def_path)
            if path not in params_cache:
                params_cache[path] = yaml.safe_load((root / path).read_text()) or {}
            for key in keys or list(params_cache[path]):
                params[key] = _lookup(params_cache[path], key, path)
        outs = tuple(str(out.def_path) for out in stage.outs)
        directories = frozenset(meta.get("directories", []))
        unknown = directories - set(outs)
        if unknown:
            raise UserError(f"dvc.yaml: stage '{stage.name}': meta.directories names {sorted(unknown)}, which are not outputs")
        specs.append(StageSpec(
            name=stage.name, cmd=stage.cmd, deps=tuple(deps), outs=outs, directories=directories,
            params=params, threads=int(meta.get("threads", 1)), resources=resources.get(_base_name(stage.name), {}),
            report=_report_entries(root, stage.name, meta.get("report", []), outs),
        ))
    return specs


def _report_entries(root: Path, stage_name: str, entries: list, outs: tuple[str, ...]) -> dict:
    """A stage's ``meta.report`` (a list of {out, caption, category, ...}) as output -> report() arguments,
    checked: a reported path that is no output, or a missing caption, would only show as a gap in the report."""
    report = {}
    for entry in entries:
        entry = dict(entry)
        out = entry.pop("out")
        if out not in outs:
            raise UserError(f"dvc.yaml: stage '{stage_name}': meta.report names {out!r}, which is not an output")
        caption = f"{REPORT_DIR}/{entry['caption']}"
        if not (root / caption).is_file():
            raise UserError(f"dvc.yaml: stage '{stage_name}': caption {caption} of {out} not found")
        report[out] = {**entry, "caption": caption}
    return report


def tracked_settings(params: dict, stage_names: tuple[str, ...], root: str | Path = ".") -> dict:
    """The part of ``params`` that dvc.yaml's stages ``stage_names`` track (every foreach item's), nested as in
    params.yaml: ``teacher`` whole, ``train.devices`` as ``{"train": {"devices": ...}}``.

    What those stages' outputs depend on, read from the one DAG definition so that a key added there counts here.
    """
    specs = read_stages(root)
    unknown = set(stage_names) - {_base_name(spec.name) for spec in specs}
    if unknown:
        raise UserError(f"dvc.yaml: no stage named {sorted(unknown)}")
    tracked = {key for spec in specs if _base_name(spec.name) in stage_names for key in spec.params}
    # A key under one that is tracked whole (teacher.epochs beside teacher) is already in it.
    tracked = {key for key in tracked if not any(key.startswith(f"{other}.") for other in tracked)}
    settings: dict = {}
    for dotted in sorted(tracked):
        *parents, leaf = dotted.split(".")
        node = settings
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(_lookup(params, dotted, "params"))
    return settings


def _base_name(stage_name: str) -> str:
    """The dvc.yaml name of a stage: "proposals@train" -> "proposals"."""
    return stage_name.partition("@")[0]


def stage_edges(specs: list[StageSpec]) -> set[tuple[str, str]]:
    """(upstream, downstream) stage pairs: downstream depends on a path that upstream writes or lies under."""
    producers = {out: s.name for s in specs for out in s.outs}
    edges = set()
    for spec in specs:
        for dep in spec.deps:
            for out, producer in producers.items():
                if dep == out or dep.startswith(out.rstrip("/") + "/"):
                    edges.add((producer, spec.name))
    return edges


def snakemake_inputs(spec: StageSpec, specs: list[StageSpec], root: str | Path = ".") -> list[str]:
    """A stage's Snakemake inputs: pipeline outputs as they are, source directories as their files.

    Snakemake compares modification times; a source directory's own mtime does not change when a file in it
    is edited, so its files are listed one by one (byte-code caches left out, as in .dvcignore).
    """
    produced = {out for s in specs for out in s.outs}
    inputs = []
    for dep in spec.deps:
        path = Path(root) / dep
        if dep in produced or not path.is_dir():
            inputs.append(dep)
            continue
        inputs.extend(
            str(p.relative_to(root)) for p in sorted(path.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
    return inputs


def tracked_params_json(spec: StageSpec) -> str:
    """The stage's tracked params as canonical JSON: Snakemake reruns the rule when this string changes."""
    return json.dumps(spec.params, sort_keys=True)


def record_in_dvc_lock(specs: list[StageSpec], root: str | Path = ".", dvc: str = "dvc") -> list[str]:
    """Record in ``dvc.lock`` every stage whose outputs all exist (what Snakemake built), leaving the outputs be.

    ``dvc commit`` by default relinks each output from the cache, which gives the file a new inode and a new
    mtime in commit order; Snakemake compares mtimes, so an input relinked after its output would make the
    next ``snakemake`` rerun a stage that is up to date. ``--no-relink`` keeps the workspace untouched.
    Returns the names of the stages recorded."""
    built = [spec.name for spec in specs if all((Path(root) / out).exists() for out in spec.outs)]
    if built:
        subprocess.run([dvc, "commit", "--force", "--no-relink", "--quiet", *built], cwd=root, check=True)
    return built
