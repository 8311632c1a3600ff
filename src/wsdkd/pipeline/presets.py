"""Presets: the paper's settings (and the released code's) as overlays of params.yaml, kept in workflow/presets/.

A preset is a YAML mapping of the params it changes, optionally ``extends: OTHER`` to start from another
preset. Every preset resolves to the same set of keys (a test holds them to it), so applying one after
another gives what applying it to the shipped params.yaml gives, and ``builtin`` restores the shipped run.
:func:`apply_preset` edits params.yaml in place, keeping its comments, then validates the whole file against
the schema and writes it atomically.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .atomic import atomic_path
from .config import PROJECT_ROOT, validate_params
from .errors import UserError

PRESETS_DIR = PROJECT_ROOT / "workflow" / "presets"
EXTENDS = "extends"
SCIENTIFIC_BELOW = 1e-3  # floats smaller than this are written as 1.0e-4, as params.yaml writes them
# The params key a dataset source reads its root from; builtin synthesises its data and has none.
DATA_ROOT = {"coco2014": ("dataset", "coco", "root"), "coco": ("dataset", "coco", "root"),
             "nuswide": ("dataset", "nuswide", "root")}


def preset_names(folder: Path = PRESETS_DIR) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.yaml"))


def merge(base: dict, overlay: dict) -> dict:
    """``base`` with ``overlay``'s values set, mappings merged key by key (a copy; neither input changes)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_preset(name: str, folder: Path = PRESETS_DIR, _seen: tuple[str, ...] = ()) -> dict:
    """The preset's overlay with its ``extends`` chain resolved."""
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"{path}: no preset {name!r} (expected one of: {', '.join(preset_names(folder))})")
    if name in _seen:
        raise UserError(f"{path}: presets extend each other in a loop ({' -> '.join((*_seen, name))})")
    try:
        overlay = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(overlay, dict):
        raise UserError(f"{path}: expected a mapping of params, got {type(overlay).__name__}")
    parent = overlay.pop(EXTENDS, None)
    return merge(load_preset(parent, folder, (*_seen, name)), overlay) if parent else overlay


def set_dotted(params: dict, dotted: str, value: Any, source: str) -> None:
    """Set ``section.key.leaf`` of ``params`` in place; the key must exist already (a typo is an error)."""
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or leaf not in node:
        raise UserError(f"{source}: --set {dotted}: params.yaml has no such setting")
    node[leaf] = value


def _overlay_into(node, overlay: dict) -> None:
    """Write ``overlay`` into the round-trip mapping ``node`` key by key, so the comments stay where they are;
    values already equal are left as written (a no-op preset leaves the file as it was)."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            _overlay_into(node[key], value)
        elif node.get(key) != value or key not in node:
            node[key] = _flow(value)


def _flow(value: Any) -> Any:
    """Lists and mappings written inline, as params.yaml writes them (``scales: [480, 576]``)."""
    if isinstance(value, (list, dict)):
        flow = CommentedSeq(map(_flow, value)) if isinstance(value, list) else CommentedMap(
            (k, _flow(v)) for k, v in value.items())
        flow.fa.set_flow_style()
        return flow
    return value


def _float(representer, value: float):
    """Floats that PyYAML (YAML 1.1) reads back as floats (1e-05 is a string there, 1.0e-5 a number), small ones
    in params.yaml's style: 1.0e-5, not 1e-05 or 0.00001."""
    text = repr(value)
    if value and abs(value) < SCIENTIFIC_BELOW:
        mantissa, exponent = f"{value:.15e}".split("e")
        text = f"{mantissa.rstrip('0')}{'0' if mantissa.rstrip('0').endswith('.') else ''}e{int(exponent)}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _plain(node) -> Any:
    """ruamel's round-trip types as plain dicts, lists and scalars (what the schema validator reads)."""
    return yaml.safe_load(io.StringIO(_dump(node)))


def _dump(node) -> str:
    stream = io.StringIO()
    _round_trip().dump(node, stream)
    return stream.getvalue()


def _round_trip() -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap the comments' long lines
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    rt.representer.add_representer(float, _float)
    return rt


def apply_preset(name: str, params_path: Path, data_root: str | None = None,
                 settings: dict[str, Any] | None = None, folder: Path = PRESETS_DIR) -> dict:
    """Rewrite ``params_path`` with preset ``name``, the dataset root and ``settings`` (dotted keys) applied.

    ``data_root`` is required for a preset of a real dataset and refused for the built-in one. The result is
    validated before anything is written; the file is replaced atomically. Returns the new params.
    """
    overlay = load_preset(name, folder)
    if not params_path.is_file():
        raise UserError(f"{params_path}: params file not found")
    doc = _round_trip().load(params_path.read_text())
    _overlay_into(doc, overlay)
    source = doc["dataset"]["source"]
    root_key = DATA_ROOT.get(source)
    if root_key is None and data_root is not None:
        raise UserError(f"{folder / f'{name}.yaml'}: dataset.source {source} synthesises its data: "
                        "--data-root does not apply")
    if root_key is not None:
        if data_root is None:
            raise UserError(f"{folder / f'{name}.yaml'}: dataset.source {source} needs --data-root "
                            f"(it sets {'.'.join(root_key)})")
        _overlay_into(doc, {root_key[0]: {root_key[1]: {root_key[2]: str(data_root)}}})
    for dotted, value in (settings or {}).items():
        set_dotted(doc, dotted, value, str(params_path))
    params = validate_params(_plain(doc), f"{params_path} (preset {name})")
    text = _dump(doc)
    with atomic_path(params_path) as tmp:
        tmp.write_text(text)
    return params
