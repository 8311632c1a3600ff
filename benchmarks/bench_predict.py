"""Throughput of ``wsdkd predict`` against a bare forward pass of the same student, and (later) the teacher.

Three timings over the same N synthetic JPEGs, each the best of ``--repeats`` interleaved rounds (the best,
because on a shared machine other work only ever slows a round down):

- bare forward: ``model(x)`` + sigmoid in a loop over batches preloaded on the device;
- predict, decode excluded: the predict path's model part (``score_batches``: host-to-device copy, autocast,
  sigmoid, back to the host) plus JSON Lines formatting, over batches decoded beforehand;
- predict, decode included: the whole path (``predict_files``: read, decode, squash, normalise, batch) + JSONL.

The overhead of a predict timing is its time over the bare forward's, minus one; the target is at most 10% at
batch 32 for the decode-excluded path. Decoding is reported too, and honestly dominates on a CPU.

    python benchmarks/bench_predict.py [--images 256] [--batch-size 32] [--input-size 224] [--device auto]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from wsdkd.models.backbones import build_backbone
from wsdkd.models.student import StudentClassifier, save_student
from wsdkd.predict import ImageFiles, collate_readable, load_model, predict_files, score_batches
from wsdkd.predict_format import make_writer
from wsdkd.train.device import autocast, resolve_device

COCO_CLASSES = 80
# A typical COCO photo: 640 x 480, smooth enough to compress like one (about 100 KB as JPEG).
PHOTO_SIZE = (640, 480)
PHOTO_DETAIL = 8  # noise is drawn on a grid this many times coarser than the photo, then upsampled
JPEG_QUALITY = 90
OVERHEAD_TARGET = 0.10
TEACHER_SPEEDUP_TARGET = 20.0


def write_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    width, height = PHOTO_SIZE
    paths = []
    for i in range(count):
        coarse = rng.integers(0, 256, (height // PHOTO_DETAIL, width // PHOTO_DETAIL, 3), dtype=np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(coarse).resize(PHOTO_SIZE, Image.BILINEAR).save(path, quality=JPEG_QUALITY)
        paths.append(path)
    return paths


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_bare(model: torch.nn.Module, on_device: Sequence[torch.Tensor], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad(), autocast(device, True):  # the same precision as predict's
        for x in on_device:
            torch.sigmoid(model(x).float())
    _sync(device)
    return time.perf_counter() - start


def time_predict_preloaded(model: torch.nn.Module, meta: dict, batches: list, device: torch.device) -> float:
    writer = make_writer("jsonl", io.StringIO(), meta["class_names"], 0.5, 3, [])
    start = time.perf_counter()
    for batch, scores in score_batches(model, batches, device):
        for i, row in zip(batch.indices, scores):
            writer.write(str(i), row)
    return time.perf_counter() - start


def time_predict_files(model: torch.nn.Module, meta: dict, paths: list[Path], batch_size: int,
                       device: torch.device, workers: int) -> float:
    writer = make_writer("jsonl", io.StringIO(), meta["class_names"], 0.5, 3, [])
    start = time.perf_counter()
    for outcome in predict_files(model, meta, paths, batch_size, device, workers):
        writer.write(str(outcome.path), outcome.scores)
    return time.perf_counter() - start


def teacher_speedup(teacher: Callable[[Sequence[Path]], object], paths: Sequence[Path], batch_size: int,
                    student_images_per_s: float) -> float:
    """The paper's efficiency claim: how many times faster the student labels images than the teacher.

    ``teacher`` takes a batch of image paths and returns their class scores, doing all its test-time work
    itself (decoding, region proposals, RoI pooling, detection heads), so it is compared with the student's
    whole predict path (decode included). Prints and returns student images/s over teacher images/s.
    """
    start = time.perf_counter()
    for first in range(0, len(paths), batch_size):
        teacher(paths[first:first + batch_size])
    teacher_ips = len(paths) / (time.perf_counter() - start)
    speedup = student_images_per_s / teacher_ips
    verdict = "meets" if speedup >= TEACHER_SPEEDUP_TARGET else "misses"
    print(f"teacher (whole test-time path)     {teacher_ips:9.1f} images/s   student is {speedup:.1f}x faster "
          f"({verdict} the >= {TEACHER_SPEEDUP_TARGET:g}x target)")
    return speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=224, help="the student's input (paper: 224)")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--workers", type=int, default=0, help="decoding processes for the decode-included path")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device, "--device")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_photos(folder, args.images)
        # Through a model file, as a user would: what predict runs is what load_model rebuilds.
        student = StudentClassifier(build_backbone({"name": args.backbone, "weights": "random",
                                                    "weights_path": None}), COCO_CLASSES)
        save_student(folder / "model.pt", student, [f"class{k}" for k in range(COCO_CLASSES)],
                     args.input_size, {})
        model, meta = load_model(folder / "model.pt")
        model.to(device)
        decoded = list(DataLoader(ImageFiles(paths, args.input_size, meta["mean"], meta["std"]),
                                  batch_size=args.batch_size, collate_fn=collate_readable))
        on_device = [b.pixels.to(device) for b in decoded]

        time_bare(model, on_device[:1], device)  # warm-up: lazy init, cuDNN autotuning, allocator
        best = {"bare": float("inf"), "preloaded": float("inf"), "files": float("inf")}
        for _ in range(args.repeats):  # interleaved, so a burst of load hits all three alike
            best["bare"] = min(best["bare"], time_bare(model, on_device, device))
            best["preloaded"] = min(best["preloaded"], time_predict_preloaded(model, meta, decoded, device))
            best["files"] = min(best["files"], time_predict_files(model, meta, paths, args.batch_size, device,
                                                                  args.workers))

    n = args.images
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(f"{args.backbone} student, {n} images {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG -> {args.input_size}x"
          f"{args.input_size}, batch {args.batch_size}, device {device} (torch threads {threads}), "
          f"best of {args.repeats}")
    print(f"bare forward (preloaded tensors)   {n / best['bare']:9.1f} images/s")
    for key, name in (("preloaded", "predict, decode excluded"), ("files", "predict, decode included")):
        overhead = best[key] / best["bare"] - 1
        flag = "" if key == "files" else f"  (target <= {OVERHEAD_TARGET:.0%}: " + (
            "met)" if overhead <= OVERHEAD_TARGET else "MISSED)")
        print(f"{name:<34} {n / best[key]:9.1f} images/s   overhead {overhead:+.1%}{flag}")
    print("teacher: not measured here yet; teacher_speedup() takes the teacher's test-time path (files -> scores)")


if __name__ == "__main__":
    main()
