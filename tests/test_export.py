"""``wsdkd export``: the exported graph gives the student's probabilities from [0, 1] images, with its metadata."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from wsdkd.predict.export import ONNX_METADATA, onnx_missing, read_torchscript_metadata
from wsdkd.student.model import load_student

from .conftest import CLASSES, INPUT_SIZE
from .test_predict_cli import _run

# A batch size other than the export's example batch, to show the batch axis is free.
BATCH = 3


def _reference(model_file, images01: torch.Tensor) -> np.ndarray:
    """What the student says about [0, 1] images: normalise, forward, sigmoid, all in plain PyTorch."""
    model, meta = load_student(model_file)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (meta["mean"], meta["std"]))
    with torch.no_grad():
        return torch.sigmoid(model((images01 - mean) / std)).numpy()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_matches_pytorch(tiny_student, tmp_path, capsys):
    out = tmp_path / "student.ts"
    code, _, err = _run(["export", "--model", str(tiny_student), "--format", "torchscript", "--out", str(out)],
                        capsys)
    assert code == 0 and f"wrote {out}" in err
    images = torch.rand(BATCH, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = torch.jit.load(str(out))(images).numpy()
    np.testing.assert_allclose(got, _reference(tiny_student, images), atol=1e-5)
    metadata = read_torchscript_metadata(out)
    assert metadata["class_names"] == CLASSES and metadata["input_size"] == INPUT_SIZE


@pytest.mark.skipif(bool(onnx_missing()) or importlib.util.find_spec("onnxruntime") is None,
                    reason="ONNX export needs onnx and onnxscript, and this test onnxruntime: not installed")
def test_onnx_matches_pytorch(tiny_student, tmp_path, capsys):
    import onnx
    import onnxruntime

    out = tmp_path / "student.onnx"
    code, _, _ = _run(["export", "--model", str(tiny_student), "--format", "onnx", "--out", str(out)], capsys)
    assert code == 0
    images = torch.rand(BATCH, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(2))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(["probabilities"], {"images": images.numpy()})
    np.testing.assert_allclose(got, _reference(tiny_student, images), atol=1e-4)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props[ONNX_METADATA])["class_names"] == CLASSES


@pytest.mark.skipif(not onnx_missing(), reason="the ONNX packages are installed")
def test_onnx_without_its_packages_is_one_clear_line(tiny_student, tmp_path, capsys):
    out = tmp_path / "student.onnx"
    code, _, err = _run(["export", "--model", str(tiny_student), "--format", "onnx", "--out", str(out)], capsys)
    assert code == 2 and not out.exists()
    assert err.splitlines() == [f"error: ONNX export needs {' and '.join(onnx_missing())}, not installed: "
                                f"pip install {' '.join(onnx_missing())} (or use --format torchscript)"]
