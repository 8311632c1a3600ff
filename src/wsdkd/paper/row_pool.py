"""Training the rows of one or more tables side by side: ``--jobs`` worker processes, each on its share of cores.

On 2 CPU cores, two training processes on one thread each step through 1.45x more images per second than one
process on two threads (README, "Training speed on CPU"): the student's small convolutions do not keep two
threads busy. So a table set trains its rows in a pool before ``tables.run_table`` reads them back in order.

A task is one training: a plain student, a stage 1 (Eq. 3-4) that several rows may share, or a stage 2 that
starts only once its stage 1 is written. Tasks are keyed by the rows' fingerprints, so two tables that need the
same row train it once, and a finished task (its folder's files) is never queued again. A row trained on one
thread differs from one trained on two only by floating-point rounding; its folder is reused either way.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context

from . import tables

log = logging.getLogger(__name__)

PLAIN, FEATURES, DISTILLED = "plain", "features", "distilled"


@dataclass(frozen=True)
class Task:
    key: str  # the folder the task writes (its fingerprint)
    kind: str  # PLAIN | FEATURES | DISTILLED
    label: str  # for the log: row and seed
    params: dict
    after: str | None = None  # the key of the stage 1 a stage 2 waits for


def plan_tasks(runs: list[tuple[tables.Row, int | None, dict]], dag_params: dict,
               ws: tables.Workspace) -> list[Task]:
    """The trainings ``runs`` still need, each once, in the order they were asked for; DAG rows need none."""
    return _plan(runs, dag_params, ws, *tables.upstream_identity(ws, dag_params))


def _plan(runs: list[tuple[tables.Row, int | None, dict]], dag_params: dict, ws: tables.Workspace, data: str,
          upstream: str) -> list[Task]:
    planned: dict[str, Task] = {}
    for row, seed, params in runs:
        if tables.reuses_dag(row, params, dag_params):
            continue
        label = f"{row.name}, seed {seed}"
        if row.model == "student_wo":
            row_dir = tables.plain_row_dir(params, ws, data)
            if tables.finished_record(ws, row_dir) is None:
                planned.setdefault(row_dir.name, Task(row_dir.name, PLAIN, label, params))
            continue
        features_dir, row_dir = tables.distilled_row_dirs(params, ws, upstream)
        if tables.finished_record(ws, row_dir) is not None:
            continue
        after = None
        if not tables.has_features(features_dir):
            planned.setdefault(features_dir.name, Task(features_dir.name, FEATURES, f"stage 1 of {label}", params))
            after = features_dir.name
        planned.setdefault(row_dir.name, Task(row_dir.name, DISTILLED, label, params, after))
    return list(planned.values())


def _start_worker(threads: int) -> None:
    """Each worker's torch uses ``threads`` threads (set before torch is imported, and again after)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s [worker {os.getpid()}] %(name)s: %(message)s")
    import torch

    torch.set_num_threads(threads)


def _run_task(task: Task, ws: tables.Workspace, data: str, upstream: str) -> str:
    if task.kind == PLAIN:
        tables.run_plain_row(task.params, ws, data)
    elif task.kind == FEATURES:
        tables.train_stage1(task.params, ws, upstream)
    else:
        tables.run_distilled_row(task.params, ws, upstream)
    return task.key


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def next_tasks(waiting: list[Task], done: set[str], free: int) -> list[Task]:
    """What ``free`` idle processes start next: tasks whose stage 1 is done, stage 1s first, else planned order.

    A stage 1 is short and is what its stage 2 waits for, so starting it early keeps every process busy to the
    end: a seed-0 set (2026-12-04) that reached its last stage 1 only after the independent stage 2s trained that
    row's stage 2 alone for its last 9 minutes. In planned order otherwise, so a stage 2 freed by its stage 1 goes
    before the later rows' tasks."""
    ready = [task for task in waiting if task.after is None or task.after in done]
    return sorted(ready, key=lambda task: task.kind != FEATURES)[:free]  # a stable sort: planned order kept


def train_rows(runs: list[tuple[tables.Row, int | None, dict]], dag_params: dict, ws: tables.Workspace,
               jobs: int) -> int:
    """Train every task ``runs`` need in ``jobs`` processes (cores shared evenly); the number of tasks run.

    With ``jobs`` 1 nothing happens here: ``tables.run_table`` trains the rows one after another itself."""
    if jobs <= 1:
        return 0
    data, upstream = tables.upstream_identity(ws, dag_params)  # digests the manifest: once
    tasks = _plan(runs, dag_params, ws, data, upstream)
    if not tasks:
        return 0
    threads = max(1, usable_cores() // jobs)
    log.info("%d trainings in %d processes of %d thread(s) each", len(tasks), jobs, threads)
    waiting, done = list(tasks), set()
    running: dict[Future, Task] = {}
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(threads,)) as pool:
        while waiting or running:
            for task in next_tasks(waiting, done, jobs - len(running)):
                waiting.remove(task)
                log.info("start %s (%s)", task.label, task.kind)
                running[pool.submit(_run_task, task, ws, data, upstream)] = task
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    done.add(future.result())
                except BaseException:
                    for other in running:
                        other.cancel()
                    raise
                log.info("done %s (%d of %d)", task.label, len(done), len(tasks))
    return len(tasks)
