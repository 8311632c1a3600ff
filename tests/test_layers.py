"""The package's layout is a checked contract: folders follow the DAG, and a layer imports only those below it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from .conftest import PROJECT

PACKAGE = PROJECT / "src" / "wsdkd"


def contract_layers() -> list[str]:
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return contract["layers"]


def test_the_layers_contract_is_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", "pyproject.toml"], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 kept, 0 broken" in result.stdout


def test_every_subpackage_sits_in_a_layer_and_only_the_cli_at_the_top():
    layered = {name.split(".")[1] for layer in contract_layers() for name in re.split(r"\s*\|\s*", layer)}
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == layered - {"cli"}, "a subpackage outside the contract could import anything"
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "cli.py"]


def test_every_subpackage_says_what_it_holds_and_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = init.read_text().split('"""')[1]
        assert "import" in doc, f"{init.relative_to(PROJECT)}: the docstring does not say what the package may import"


def test_no_module_imports_itself_back_through_others():
    sys.path.insert(0, str(PROJECT / "src"))
    graph = grimp.build_graph("wsdkd")
    modules = sorted(graph.modules)
    cycles = [(a, b) for a in modules for b in graph.find_modules_directly_imported_by(a)
              if graph.chain_exists(importer=b, imported=a)]
    assert cycles == []
