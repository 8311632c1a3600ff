"""The committed reference run: ``dvc.lock`` must describe the params the repository ships.

``dvc metrics diff`` in a fresh clone compares the user's run with the committed one; if a default in
``params.yaml`` changed without the reference being run again, that comparison would silently be against other
settings. :func:`lock_param_mismatches` lists every such difference.
"""

from __future__ import annotations

_MISSING = object()


def _value(tree: dict, dotted: str):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def lock_param_mismatches(lock: dict, params: dict, params_file: str = "params.yaml") -> list[str]:
    """One line per param that a stage of ``lock`` (parsed dvc.lock) recorded with a value other than the one in
    ``params`` (parsed ``params_file``), or that ``params`` no longer has."""
    problems = []
    for stage, entry in sorted((lock.get("stages") or {}).items()):
        for key, recorded in sorted(((entry.get("params") or {}).get(params_file) or {}).items()):
            current = _value(params, key)
            if current is _MISSING:
                problems.append(f"{stage}: {key} = {recorded!r} in dvc.lock, absent from {params_file}")
            elif current != recorded:
                problems.append(f"{stage}: {key} = {recorded!r} in dvc.lock, {current!r} in {params_file}")
    return problems
