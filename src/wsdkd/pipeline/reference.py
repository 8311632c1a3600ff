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


def _differences(key: str, recorded, current) -> list[tuple[str, object, object]]:
    """(dotted key, recorded, current) of every leaf that differs; a tracked section compares key by key."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return [diff for sub in sorted(recorded.keys() | current.keys())
                for diff in _differences(f"{key}.{sub}", recorded.get(sub, _MISSING), current.get(sub, _MISSING))]
    return [] if recorded == current else [(key, recorded, current)]


def _shown(value) -> str:
    return "absent" if value is _MISSING else repr(value)


def lock_param_mismatches(lock: dict, params: dict, params_file: str = "params.yaml") -> list[str]:
    """One line per param that a stage of ``lock`` (parsed dvc.lock) recorded with a value other than the one in
    ``params`` (parsed ``params_file``), named down to the leaf key, or that only one of them has."""
    problems = []
    for stage, entry in sorted((lock.get("stages") or {}).items()):
        for key, recorded in sorted(((entry.get("params") or {}).get(params_file) or {}).items()):
            for name, old, new in _differences(key, recorded, _value(params, key)):
                problems.append(f"{stage}: {name} = {_shown(old)} in dvc.lock, {_shown(new)} in {params_file}")
    return problems
