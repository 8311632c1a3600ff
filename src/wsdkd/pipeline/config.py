"""Load ``params.yaml`` and validate it against ``workflow/params.schema.json``.

Every stage and the Snakefile call :func:`load_params` first, so a typo stops the run before any work,
with one line per problem naming the key and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "params.schema.json"


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the key, what was expected and what was found."""
    key, kind, expected, value = _key_path(error), error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed))
        where = f"{key}: " if error.absolute_path else ""
        return f"{where}unknown key {', '.join(map(repr, unknown))} (expected one of: {', '.join(allowed)})"
    if kind == "required":
        missing = [k for k in expected if k not in value]
        return f"{key}: missing key {', '.join(map(repr, missing))}"
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        return f"{key}: expected {' or '.join(types)}, got {value!r}"
    if kind == "const":
        return f"{key}: expected {expected!r}, got {value!r}"
    if kind == "enum":
        return f"{key}: expected one of {', '.join(map(repr, expected))}, got {value!r}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"{key}: expected a value {bounds[kind]} {expected}, got {value!r}"
    if kind in ("minItems", "maxItems"):
        return f"{key}: expected a list of {error.schema.get('minItems')}..{error.schema.get('maxItems')} items, got {value!r}"
    return f"{key}: {error.message}"


def validate_params(params: Any, source: str = "params.yaml", schema_path: Path = SCHEMA_PATH) -> dict:
    """Validate ``params`` against the schema; raise UserError listing every problem, one per line."""
    schema = json.loads(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise UserError("\n".join(f"{source}: {_describe(e)}" for e in errors))
    return params


def load_params(path: str | Path = "params.yaml", schema_path: Path = SCHEMA_PATH) -> dict:
    """Read and validate the whole params file (every section: a stage never runs on a half-valid file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return validate_params(params, source=str(path), schema_path=schema_path)
