"""Run the DAG's stage commands (dvc.yaml) one by one in a scratch folder, measuring each: wall time, CPU time
(the stage and the worker processes it reaped), the peak RSS of its largest process, its outputs' bytes and the
peak bytes of its resume folder. The paper-scale smoke test and the cost model (benchmarks/cost_model.py) use it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from graphlib import TopologicalSorter
from pathlib import Path

from .dag import StageSpec, read_stages, stage_edges
from .errors import UserError

POLL_S = 0.5  # how often the resume folder's size is sampled while a stage runs
LOG_TAIL = 3000  # characters of a failed stage's log shown in the error


def ordered_stages(project: Path) -> list[StageSpec]:
    """The stages of ``project/dvc.yaml`` in an order that runs every stage after those it reads."""
    specs = {s.name: s for s in read_stages(project)}
    graph: dict[str, set[str]] = {name: set() for name in specs}
    for upstream, downstream in stage_edges(list(specs.values())):
        graph[downstream].add(upstream)
    return [specs[name] for name in TopologicalSorter(graph).static_order()]


def tree_bytes(paths) -> int:
    """The bytes of the files at ``paths`` and under them (missing paths count 0)."""
    total = 0
    for path in paths:
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def _tree_peak_kb(pid: int) -> int:
    """The largest peak RSS (VmHWM, kB) among process ``pid`` and its descendants now alive (0 once gone).

    Not the rusage's ru_maxrss: Linux carries the parent's peak across fork and exec into it, so every stage
    started from a big process (pytest with torch loaded) would report at least that."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    own = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return max([own, *map(_tree_peak_kb, children)])


def measure(command: str, cwd: Path, env: dict, log: Path, scratch: Path) -> dict:
    """Run one stage command; its wall time, CPU seconds (with its children), largest peak RSS (MB, sampled
    every POLL_S) and the peak bytes of its resume folder ``scratch`` (shards, the teacher's phi bank), which
    it deletes at the end."""
    argv = shlex.split(command)
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    started, scratch_peak, peak_kb = time.perf_counter(), 0, 0
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:  # the rusage of this child and the workers it reaped, once it has exited
            peak_kb = max(peak_kb, _tree_peak_kb(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            scratch_peak = max(scratch_peak, tree_bytes([scratch]))
            time.sleep(POLL_S)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise UserError(f"{log}: stage failed (exit {code}): {command}\n{log.read_text()[-LOG_TAIL:]}")
    return {"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mb": peak_kb / 1024, "scratch_bytes": scratch_peak}


def stage_env(root: Path, project: Path, threads: int | None = None) -> dict:
    """The environment of a scratch run: this checkout's package first, resume folders inside ``root``."""
    return {**os.environ, "WSDKD_CHECKPOINTS": str(root / ".checkpoints"),
            "OMP_NUM_THREADS": str(threads or os.cpu_count()),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")]))}


def run_stages(root: Path, specs: list[StageSpec], env: dict, names=None, echo=print) -> dict[str, dict]:
    """Run the stages (all, or ``names``) in ``root`` (which holds params.yaml and ``stages/``), in order;
    per stage its :func:`measure` figures and ``bytes``, its outputs' size."""
    figures = {}
    for spec in specs:
        if names is not None and spec.name not in names:
            continue
        row = measure(spec.cmd, root, env, root / f"{spec.name}.log", root / ".checkpoints")
        row["bytes"] = tree_bytes([root / out for out in spec.outs])
        figures[spec.name] = row
        echo(f"  {spec.name:22s} wall {row['wall_s']:7.1f} s  cpu {row['cpu_s']:7.1f} s  peak {row['peak_mb']:7.0f} MB"
             f"  outputs {row['bytes'] / 1e6:9.2f} MB  scratch {row['scratch_bytes'] / 1e6:8.2f} MB")
    return figures
