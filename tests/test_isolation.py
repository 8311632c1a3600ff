"""The scratch workspaces of the e2e and fault tests copy the sources of this checkout, never its run outputs.

After `make run` a checkout holds DVC's data/.gitignore, dvc.lock, logs and reports; copied into a scratch
workspace they made Snakemake find data/ before its first job (the lock test failed after `make run`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from .test_e2e import source_files

BIN = Path(sys.executable).parent


def test_a_checkout_after_a_run_gives_only_its_sources(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": {
        "cmd": "true", "params": ["a"], "deps": ["src/x.py"], "outs": ["data/out", {"reports/m.json": {"cache": False}}]}}}))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.py").write_text("")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "m.json").write_text("{}")  # a committed reference metrics file
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], cwd=tmp_path, check=True)
    # What a run leaves, untracked: the output, DVC's .gitignore beside it, dvc.lock, a log; and new work.
    (tmp_path / "data" / "out").mkdir(parents=True)
    (tmp_path / "data" / "out" / "part").write_text("1")
    (tmp_path / "data" / ".gitignore").write_text("/out\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "s.log").write_text("done\n")
    (tmp_path / "src" / "new.py").write_text("")
    assert sorted(source_files(tmp_path)) == [".dvc/.gitignore", ".dvc/config", ".dvcignore", "dvc.yaml",
                                               "params.yaml", "src/new.py", "src/x.py"]
