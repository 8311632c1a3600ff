"""``wsdkd predict``: file collection, output formats, threshold and top-k, bad images, bad model files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsdkd.cli import main
from wsdkd.data.images import SquareImages
from wsdkd.data.manifest import Split
from wsdkd.predict.files import ImageFailure, ImageScores, StudentPredictor, collect_images, predict_files
from wsdkd.predict.formats import ranked
from wsdkd.student.model import STUDENT_FORMAT_VERSION, load_student

from .conftest import CLASSES, INPUT_SIZE

GOOD = ["good/rgb.jpg", "good/gray.png", "good/nested/cmyk.jpg"]
BAD = ["bad/garbage.jpg", "bad/empty.png"]


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    for name in ("good/nested", "bad"):
        (root / name).mkdir(parents=True)
    gradient = np.linspace(0, 255, 48 * 40 * 3).reshape(40, 48, 3).astype(np.uint8)
    Image.fromarray(gradient).save(root / GOOD[0], "JPEG")
    Image.fromarray(gradient[..., 0][::-1]).save(root / GOOD[1])  # grayscale ("L")
    Image.fromarray(255 - gradient).convert("CMYK").save(root / GOOD[2], "JPEG")
    (root / BAD[0]).write_bytes(b"\x00not an image at all" * 10)
    (root / BAD[1]).write_bytes(b"")
    (root / "good" / "notes.txt").write_text("not searched: wrong suffix")
    return root


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse and UserError leave this way
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def test_collect_folders_globs_and_missing(images):
    paths, problems = collect_images([str(images / "good"), str(images / "good" / "*.jpg"),
                                      str(images / "**" / "*.png"), str(images / "nothing.jpg")])
    # Folder first (sorted, recursive, .txt skipped), repeats dropped, then the glob's new matches.
    assert paths == [images / "good/gray.png", images / "good/nested/cmyk.jpg", images / "good/rgb.jpg",
                     images / "bad/empty.png"]
    assert problems == [f"{images / 'nothing.jpg'}: no such file or folder"]
    assert collect_images([str(images / "nomatch-*.jpg")])[1] == [f"{images / 'nomatch-*.jpg'}: no images found"]


def test_predictions_are_the_sigmoid_of_the_trained_preprocessing(tiny_student, images):
    model, meta = load_student(tiny_student)
    paths = [images / name for name in GOOD]
    predictor = StudentPredictor(model, meta)
    got = list(predict_files(predictor, paths, batch_size=len(paths), device=torch.device("cpu")))
    assert [o.path for o in got] == paths and all(isinstance(o, ImageScores) for o in got)
    in_pairs = list(predict_files(predictor, paths, batch_size=2, device=torch.device("cpu")))
    # The same images as training feeds them (SquareImages), one batch, straight through the model.
    n = len(paths)
    split = Split("x", np.arange(n), paths, np.zeros(n), np.zeros(n), np.zeros((n, len(CLASSES)), np.uint8),
                  CLASSES, list(range(len(CLASSES))), None)
    batch = torch.stack([SquareImages(split, INPUT_SIZE, meta["mean"], meta["std"])[i][0] for i in range(n)])
    with torch.no_grad():
        expected = torch.sigmoid(model(batch)).numpy()
    np.testing.assert_allclose(np.stack([o.scores for o in got]), expected, rtol=0, atol=1e-7)
    # Other batch sizes pick other kernels: equal up to float32 rounding.
    np.testing.assert_allclose(np.stack([o.scores for o in in_pairs]), expected, rtol=0, atol=1e-5)
    assert np.ptp(expected) > 1e-3  # the scores really depend on the image and class


def test_unreadable_files_are_reported_in_order(tiny_student, images):
    model, meta = load_student(tiny_student)
    paths = [images / GOOD[0], images / BAD[0], images / BAD[1], images / GOOD[1]]
    got = list(predict_files(StudentPredictor(model, meta), paths, batch_size=3, device=torch.device("cpu")))
    assert [type(o) for o in got] == [ImageScores, ImageFailure, ImageFailure, ImageScores]
    assert [o.path for o in got] == paths
    assert str(paths[1]) in got[1].message


def test_threshold_is_strict_and_rankings_are_sorted():
    scores = np.array([0.2, 0.7, 0.5, 0.7], dtype=np.float32)
    names = ["a", "b", "c", "d"]
    labels, top = ranked(scores, names, threshold=float(scores[2]), top_k=3)
    assert [n for n, _ in labels] == ["b", "d"]  # c sits exactly on the threshold: not a label
    assert [n for n, _ in top] == ["b", "d", "c"]  # ties keep class order
    assert ranked(scores, names, 0.5, top_k=10)[1][-1][0] == "a"  # k beyond K lists every class


def test_jsonl(tiny_student, images, tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    code, _, err = _run(["predict", str(images / "good"), "--model", str(tiny_student), "--out", str(out),
                         "--threshold", "0.5", "--top-k", "2", "--format", "jsonl"], capsys)
    assert code == 0 and err == ""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(GOOD)
    for record in records:
        assert set(record) == {"path", "labels", "top_k", "scores"}
        assert list(record["scores"]) == CLASSES
        assert {d["name"] for d in record["labels"]} == {n for n, s in record["scores"].items() if s > 0.5}
        top = [d["score"] for d in record["top_k"]]
        assert len(top) == 2 and top == sorted(top, reverse=True) and top[0] == max(record["scores"].values())


def test_csv_and_threshold(tiny_student, images, tmp_path, capsys):
    out = tmp_path / "p.csv"
    # A threshold halfway between two middle scores: some classes are labels, some not, none on the edge.
    model, meta = load_student(tiny_student)
    scores = np.stack([o.scores for o in predict_files(StudentPredictor(model, meta), [images / g for g in GOOD],
                                                       4, torch.device("cpu"))])
    middle = np.sort(scores, axis=None)[scores.size // 2 - 1: scores.size // 2 + 1]
    threshold = float(middle.mean())
    code, _, _ = _run(["predict", str(images / "good"), "--model", str(tiny_student), "--out", str(out),
                       "--threshold", repr(threshold), "--format", "csv"], capsys)
    assert code == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == len(GOOD) and list(rows[0]) == ["path", "labels", "topk", *CLASSES]
    n_labels = 0
    for row in rows:
        labels = set(filter(None, row["labels"].split(";")))
        assert labels == {c for c in CLASSES if float(row[c]) > threshold}
        n_labels += len(labels)
        top = [pair.split(":") for pair in row["topk"].split(";")]
        assert [n for n, _ in top] == sorted(CLASSES, key=lambda c: -float(row[c]))
    assert 0 < n_labels < len(GOOD) * len(CLASSES)


def test_table_is_aligned(tiny_student, images, capsys):
    code, out, _ = _run(["predict", str(images / "good" / "**" / "*.jpg"), "--model", str(tiny_student),
                         "--format", "table"], capsys)
    header, *rows = out.splitlines()
    assert code == 0 and header.startswith("path")
    assert [line.split()[0] for line in rows] == [str(images / g) for g in ("good/nested/cmyk.jpg", "good/rgb.jpg")]
    top_at, labels_at = header.index("top-3"), header.index("labels > 0.5")
    for line in rows:  # every column starts where its header does
        assert line[top_at - 2:top_at] == "  " and line[top_at] != " "
        assert line[labels_at - 2:labels_at] == "  " and line[labels_at] != " "


def test_bad_images_exit_1_and_are_named(tiny_student, images):
    result = subprocess.run([sys.executable, "-m", "wsdkd.cli", "predict", str(images), "--model",
                             str(tiny_student), "--format", "jsonl"], capture_output=True, text=True)
    assert result.returncode == 1
    predicted = [json.loads(line)["path"] for line in result.stdout.splitlines()]
    assert sorted(predicted) == sorted(str(images / g) for g in GOOD)
    for name in BAD:
        assert sum(str(images / name) in line for line in result.stderr.splitlines()) == 1
    assert "predicted 3 of 5 images" in result.stderr


def test_wrong_model_file_exit_2_one_line(images, tmp_path):
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_text("hello")
    result = subprocess.run([sys.executable, "-m", "wsdkd.cli", "predict", str(images / GOOD[0]), "--model",
                             str(not_a_model)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {not_a_model}: not a model file (UnpicklingError)"]


@pytest.mark.parametrize("damage", ["truncated", "newer", "other_kind", "wrong_classes"])
def test_unusable_model_files(damage, tiny_student, images, tmp_path, capsys):
    bad = tmp_path / "model.pt"
    if damage == "truncated":
        data = tiny_student.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        blob = torch.load(tiny_student, weights_only=False)
        if damage == "newer":
            blob["format_version"] = STUDENT_FORMAT_VERSION + 1
        elif damage == "other_kind":
            blob = {"state_dict": blob["state_dict"]}
        else:
            blob["class_names"] = CLASSES + ["extra"]  # the weights have 3 outputs, the file claims 4
        torch.save(blob, bad)
    code, out, err = _run(["predict", str(images / GOOD[0]), "--model", str(bad)], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {bad}: ")
