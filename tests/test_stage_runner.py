"""The stage runner's measurements and the paper-scale smoke configuration's COCO 2014-shaped folder."""

from __future__ import annotations

import json
import os
import sys

import pytest

from wsdkd.pipeline import paper_smoke
from wsdkd.pipeline.errors import UserError
from wsdkd.pipeline.stage_runner import measure, tree_bytes


def test_measure_reports_the_stage_s_own_peak_not_its_parent_s(tmp_path):
    held = bytearray(300 * 2 ** 20)  # this process is big; Linux would carry its peak into a child's ru_maxrss
    code = "import time; b = bytearray(60 * 2 ** 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    figures = measure(f"python -c \"{code}\"", tmp_path, dict(os.environ), tmp_path / "log", tmp_path / "none")
    assert 60 < figures["peak_mb"] < 60 + 200, figures  # the 60 MB it touched, plus Python
    assert figures["wall_s"] >= 1.5 and figures["scratch_bytes"] == 0
    del held


def test_a_failing_stage_names_its_log_and_shows_its_end(tmp_path):
    with pytest.raises(UserError, match=r"stage.log: stage failed \(exit 3\): .*\n.*boom"):
        measure(f"{sys.executable} -c \"print('boom'); raise SystemExit(3)\"", tmp_path, dict(os.environ),
                tmp_path / "stage.log", tmp_path / "none")


def test_tree_bytes_counts_files_and_folders(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    (tmp_path / "b").write_bytes(b"y" * 5)
    assert tree_bytes([tmp_path / "d", tmp_path / "b", tmp_path / "missing"]) == 15


def test_the_smoke_folder_is_coco2014_shaped_with_the_first_annotated_photos(coco_mini, tmp_path):
    root = paper_smoke.coco2014_folder(coco_mini, tmp_path / "coco", {"train": 4, "test": 2})
    train = json.loads((root / "annotations/instances_train2014.json").read_text())
    source = json.loads((coco_mini / "annotations/instances_train2017.json").read_text())
    first = sorted({a["image_id"] for a in source["annotations"]})[:4]
    assert [i["id"] for i in sorted(train["images"], key=lambda i: i["id"])] == first
    assert {a["image_id"] for a in train["annotations"]} == set(first)
    assert len(train["categories"]) == 80  # every class kept, as the loader expects
    test = json.loads((root / "annotations/instances_val2014.json").read_text())
    assert len(test["images"]) == 2
    assert (root / "train2014").resolve() == (coco_mini / "train2017").resolve()
    assert (root / "val2014" / test["images"][0]["file_name"]).is_file()
