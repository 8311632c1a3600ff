"""Export a student for use without wsdkd: TorchScript or ONNX, one self-contained file with its metadata.

The exported graph takes what any image library gives after a resize, and returns probabilities:

- input ``images``: float32 (N, 3, S, S), RGB scaled to [0, 1], the whole image squashed (not cropped) to
  S x S with S = the metadata's ``input_size``; the batch size N is free, S is fixed.
- output ``probabilities``: float32 (N, K), the sigmoid of the student's logits, classes in ``class_names`` order.

Normalisation (mean/std) and the sigmoid are inside the graph, so a caller cannot get them wrong. The metadata
(JSON: class names, input size, the input/output contract) is stored in the file: TorchScript as the extra file
``wsdkd.json`` (``torch.jit.load(path, _extra_files=...)``, or ``read_torchscript_metadata``), ONNX as the
model's ``metadata_props`` entry ``wsdkd``.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..pipeline.atomic import atomic_path
from ..pipeline.errors import UserError

FORMATS = ("torchscript", "onnx")
EXPORT_FORMAT, EXPORT_FORMAT_VERSION = "wsdkd-student-export", 1
TORCHSCRIPT_METADATA = "wsdkd.json"
ONNX_METADATA = "wsdkd"
INPUT_NAME, OUTPUT_NAME = "images", "probabilities"
# torch.export specialises dimensions of size 0 and 1, so the example batch must be larger to stay dynamic.
EXAMPLE_BATCH = 2
# What torch's ONNX exporter needs beyond torch itself.
ONNX_PACKAGES = ("onnx", "onnxscript")


class ProbabilityModel(nn.Module):
    """[0, 1] RGB images -> sigmoid probabilities: the student with its normalisation and sigmoid built in."""

    def __init__(self, student: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.student = student
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.student((images - self.mean) / self.std))


def export_metadata(meta: dict, input_size: int) -> dict:
    return {
        "format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION,
        "backbone": meta["backbone"], "class_names": list(meta["class_names"]), "input_size": input_size,
        "input": f"{INPUT_NAME}: float32 (N, 3, {input_size}, {input_size}), RGB in [0, 1], squashed to "
                 f"{input_size}x{input_size}; normalisation (mean {list(meta['mean'])}, std "
                 f"{list(meta['std'])}) is inside the graph",
        "output": f"{OUTPUT_NAME}: float32 (N, {len(meta['class_names'])}), sigmoid probabilities in "
                  f"class_names order",
    }


def export_student(student: nn.Module, meta: dict, fmt: str, out: str | Path, input_size: int | None = None) -> dict:
    """Write ``student`` (with ``meta`` from ``load_student``) to ``out`` as ``fmt``; returns the metadata."""
    size = input_size or meta["input_size"]
    metadata = export_metadata(meta, size)
    model = ProbabilityModel(student, meta["mean"], meta["std"]).eval().cpu()  # CPU: portable, as deployed
    example = torch.rand(EXAMPLE_BATCH, 3, size, size)
    if fmt == "torchscript":
        _torchscript(model, example, Path(out), metadata)
    elif fmt == "onnx":
        _onnx(model, example, Path(out), metadata)
    else:
        raise UserError(f"--format: unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return metadata


def _torchscript(model: nn.Module, example: torch.Tensor, out: Path, metadata: dict) -> None:
    # Tracing, not scripting: the backbones' Python (drop-connect lists, padding helpers) is not scriptable,
    # and in eval mode the traced path is the only one taken. torch marks TorchScript deprecated; the file
    # still loads in torch and libtorch, so the warning is kept from the user (ONNX is the lasting format).
    with torch.no_grad(), warnings.catch_warnings(), atomic_path(out) as tmp:
        warnings.filterwarnings("ignore", category=FutureWarning, message=r"`torch\.jit\.")
        traced = torch.jit.trace(model, example, check_trace=False)  # the tests compare outputs instead
        torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata)})


def read_torchscript_metadata(path: str | Path) -> dict:
    extra = {TORCHSCRIPT_METADATA: ""}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r"`torch\.jit\.")
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[TORCHSCRIPT_METADATA])


def onnx_missing() -> list[str]:
    """The packages the ONNX exporter needs that are not installed."""
    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def _onnx(model: nn.Module, example: torch.Tensor, out: Path, metadata: dict) -> None:
    missing = onnx_missing()
    if missing:
        raise UserError(f"ONNX export needs {' and '.join(missing)}, not installed: pip install "
                        f"{' '.join(missing)} (or use --format torchscript)")
    import onnx

    batch = torch.export.Dim("batch", min=1)
    with atomic_path(out) as tmp:
        # The torch.export-based exporter (torch's default); weights inline so the file stands alone.
        torch.onnx.export(model, (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes={"images": {0: batch}},  # keyed by forward()'s argument name
                          external_data=False, dynamo=True)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA, json.dumps(metadata)
        onnx.save(proto, str(tmp))
