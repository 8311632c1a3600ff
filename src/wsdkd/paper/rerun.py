"""Two sets of kept table rows side by side: did a retrain (new code, another machine) move a row?

A set is a folder of row records (``reports/tables/rows/<key>.json``, as ``wsdkd table`` writes them). Records are
matched to the rows of a tables file and their seeds by the settings each holds, not by file name, so the two
folders may come from different sessions. A change of a row's mean is starred by the tables' own rule (more than
twice the pooled std of the two sets, :mod:`wsdkd.evaluate.significance`).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..evaluate.significance import pooled_std, significant
from .tables import Row

Run = tuple[Row, int | None, dict]


def _settings_key(model: str, params: dict) -> str:
    """A run's identity: which student and its settings. The plain student's record holds a ``distill`` section
    too, equal to ours, so the model is what tells those two apart."""
    return json.dumps([model, {k: params[k] for k in ("student", "distill")}], sort_keys=True)


def seeded_runs(runs: list[Run]) -> list[Run]:
    """The runs that keep a record, each (row, seed) once: the teacher has no seed, and tables share rows."""
    seen, out = set(), []
    for row, seed, params in runs:
        if seed is not None and (row.name, seed) not in seen:
            seen.add((row.name, seed))
            out.append((row, seed, params))
    return out


def matched_runs(folder: Path, runs: list[Run], column: str) -> dict[str, dict[int, float]]:
    """row name -> {seed: the record's ``column``} for each of ``runs`` that ``folder`` holds a record of."""
    records = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        model = "student_w" if "features" in record else "student_wo"  # a distilled record names its stage 1
        records[_settings_key(model, record["params"])] = record
    out: dict[str, dict[int, float]] = {}
    for row, seed, params in runs:
        record = records.get(_settings_key(row.model, params))
        if record is not None and column in record:
            out.setdefault(row.name, {})[seed] = record[column]
    return out


def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.1f}" if values else "—"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"


def comparison_markdown(labels: dict[str, str], seeds: list[int], old: dict[str, dict[int, float]],
                        new: dict[str, dict[int, float]], column: str) -> str:
    """One line per row of ``labels``: each seed old -> new, both sets' mean ± std, the change of the mean."""
    head = ["row"] + [f"seed {s}: old → new" for s in seeds] + ["old", "new", "change (pooled std)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, label in labels.items():
        a, b = old.get(name, {}), new.get(name, {})
        cells = [f"{a[s]:.1f} → {b[s]:.1f} ({b[s] - a[s]:+.1f})" if s in a and s in b else "—" for s in seeds]
        va, vb = list(a.values()), list(b.values())
        change = "—"
        if va and vb:
            spread = pooled_std(va, vb)
            change = (f"{statistics.fmean(vb) - statistics.fmean(va):+.1f}{' *' if significant(va, vb) else ''}"
                      + (f" ({spread:.1f})" if spread is not None else ""))
        lines.append("| " + " | ".join([label] + cells + [_mean_std(va), _mean_std(vb), change]) + " |")
    lines += ["", f"{column}; `*`: the change of the mean exceeds twice the two sets' pooled std."]
    return "\n".join(lines) + "\n"
