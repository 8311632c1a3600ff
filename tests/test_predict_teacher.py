"""``wsdkd predict`` with a teacher file: the pipeline's own proposals and scores, bad images, old files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from wsdkd.cli import main
from wsdkd.data.manifest import Split
from wsdkd.proposals.extract import extract_proposals
from wsdkd.teacher.inference import run_teacher
from wsdkd.teacher.inputs import SplitProposals
from wsdkd.teacher.wsddn import build_teacher, load_teacher, save_teacher

from .conftest import CLASSES

NUM_PROPOSALS = 24
CACHE_SCALE = 64
IMAGE_SIZES = [(96, 72), (64, 80)]  # (width, height): not square, so the box scaling differs per axis
TEACHER_CFG = {"backbone": {"name": "efficientnet_lite0", "weights": "random", "weights_path": None},
               "freeze_backbone": True, "head": "gap_mlp", "head_hidden": 16, "roi_op": "align", "a": 1.0,
               "b": 0.0, "scales": [CACHE_SCALE], "cache_scale": CACHE_SCALE}


@pytest.fixture(scope="module")
def teacher_case(tmp_path_factory, default_params) -> tuple[Path, list[Path], Path, dict]:
    """A random teacher file (with its proposals params), two PNG photos-to-be and one garbage file."""
    root = tmp_path_factory.mktemp("teacher_predict")
    rng = np.random.default_rng(0)
    images = []
    for k, (width, height) in enumerate(IMAGE_SIZES):
        # Blocks of colour: edges for the proposals; PNG, so OpenCV and PIL decode the same pixels.
        coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        images.append(root / f"photo{k}.png")
        Image.fromarray(coarse).resize((width, height), Image.NEAREST).save(images[-1])
    garbage = root / "garbage.jpg"
    garbage.write_bytes(b"\x00not an image" * 10)

    torch.manual_seed(0)
    model = build_teacher(TEACHER_CFG, len(CLASSES))
    # Random BatchNorm statistics make every activation vanish; re-estimated ones give image-dependent scores.
    for module in model.body.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.body.train()
    with torch.no_grad():
        model.body(torch.randn(4, 3, CACHE_SCALE, CACHE_SCALE))
    proposals_cfg = {**default_params["proposals"], "num_proposals": NUM_PROPOSALS}
    path = root / "model.pt"
    save_teacher(path, model.eval(), CLASSES, TEACHER_CFG, proposals_cfg)
    return path, images, garbage, proposals_cfg


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # UserError leaves this way
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def _pipeline_scores(path: Path, images: list[Path], proposals_cfg: dict, tmp_path: Path) -> np.ndarray:
    """p as the pipeline computes it: the proposals stage's file, then run_teacher over a split of the images."""
    model, _ = load_teacher(path)
    n = len(images)
    ids = np.arange(n)
    extract_proposals(ids, images, proposals_cfg, tmp_path / "x.h5", tmp_path / "shards", progress=False)
    widths, heights = (np.array(side) for side in zip(*IMAGE_SIZES))
    split = Split("x", ids, images, widths, heights, np.zeros((n, len(CLASSES)), np.uint8), CLASSES,
                  list(range(len(CLASSES))), None)
    proposals = SplitProposals(split, tmp_path / "x.h5")
    try:
        (batch,) = run_teacher(model, split, proposals, CACHE_SCALE, n, torch.device("cpu"), amp=False,
                               progress=False)
    finally:
        proposals.close()
    return batch.p


def test_teacher_predict_matches_the_pipeline(teacher_case, tmp_path, capsys):
    path, images, garbage, proposals_cfg = teacher_case
    code, out, err = _run(["predict", *map(str, images), str(garbage), "--model", str(path), "--format", "jsonl",
                           "--top-k", "2", "--batch-size", "2"], capsys)
    assert code == 1
    assert [line for line in err.splitlines() if str(garbage) in line] == [
        f"error: {garbage}: cannot read image (empty, truncated or not an image)"]
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in images]
    got = np.array([[r["scores"][c] for c in CLASSES] for r in records])
    expected = _pipeline_scores(path, images, proposals_cfg, tmp_path)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)  # JSON keeps 6 decimals
    assert np.ptp(expected, axis=0).max() > 1e-3, "scores must depend on the image for the check to mean much"
    for record in records:
        assert [d["name"] for d in record["labels"]] == [
            n for n, _ in sorted(record["scores"].items(), key=lambda kv: -kv[1]) if record["scores"][n] > 0.5]
        assert len(record["top_k"]) == 2


def test_teacher_file_without_proposals_params_exit_2_one_line(teacher_case, tmp_path):
    path, images, _, _ = teacher_case
    blob = torch.load(path, weights_only=False)
    del blob["proposals"]  # as written before predict supported teachers
    old = tmp_path / "old.pt"
    torch.save(blob, old)
    result = subprocess.run([sys.executable, "-m", "wsdkd.cli", "predict", str(images[0]), "--model", str(old)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {old}: this teacher file does not record its proposals params")


def test_export_refuses_a_teacher(teacher_case, tmp_path, capsys):
    path = teacher_case[0]
    code, out, err = _run(["export", "--model", str(path), "--format", "onnx", "--out", str(tmp_path / "t.onnx")],
                          capsys)
    assert code == 2 and out == "" and err == f"error: {path}: not a wsdkd student model file\n"
