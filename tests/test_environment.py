"""The conda environment and the pip requirements pin the same versions."""

from __future__ import annotations

import yaml

from .conftest import PROJECT


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    return pins


def test_environment_yml_pins_equal_requirements():
    requirements = _pins((PROJECT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((PROJECT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == requirements
    assert all(requirements.values()), "every requirement is pinned with =="
