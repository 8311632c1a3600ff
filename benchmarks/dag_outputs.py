"""What the distillation benchmarks read: the DAG's outputs up to the teacher cache (run `make run` first)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from wsdkd.distill.training import TargetPart, _frozen_teacher, _open_parts
from wsdkd.engine.device import resolve_device
from wsdkd.pipeline.config import load_params
from wsdkd.student.training import read_splits
from wsdkd.teacher.wsddn import TWDet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", type=Path, default=Path("data/dataset"))
    parser.add_argument("--cache", type=Path, default=Path("data/teacher_cache"))
    parser.add_argument("--teacher", type=Path, default=Path("models/teacher"))


def open_outputs(args: argparse.Namespace, device: torch.device | None = None) -> tuple[dict, dict, TWDet,
                                                                                     list[TargetPart]]:
    """params, the splits, the frozen teacher (on ``device``, default the student's) and the cache's parts."""
    params = load_params(args.params)
    device = device or resolve_device(params["student"]["device"], "student.device")
    splits = read_splits(args.manifest)
    teacher = _frozen_teacher(args.teacher, device, splits["train"].class_names)
    return params, splits, teacher, _open_parts(splits, args.cache, teacher)
