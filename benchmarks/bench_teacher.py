"""Teacher benchmarks: training throughput, cache bytes per image, cache write/read speed, streaming memory.

    python benchmarks/bench_teacher.py [--proposals 200] [--images 64] [--cache data/teacher_cache/test.h5]

Synthetic inputs (random pixels, boxes and logits) stand in for data, so it runs anywhere; ``--cache`` also
reports the stored bytes of each dataset of a real cache file. Timings on a shared CPU are noisy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import wsdkd  # noqa: F401  (first: it sets the OpenMP wait policy, which torch reads as it loads)
import h5py
import numpy as np
import torch

from wsdkd.backbones.zoo import build_backbone
from wsdkd.engine.device import autocast
from wsdkd.teacher.cache import CacheLayout, TeacherCache, cache_writer
from wsdkd.teacher.selection import select_proposals
from wsdkd.teacher.wsddn import ROI_SIZE, TWDet, image_scores, objectness, probability_bce, two_stream_scores

NUM_CLASSES = 12
IMAGE_SIZE = 256
BATCH = 16
CHANNELS = 112  # EfficientNet-Lite0's stride-16 map
NUM_SELECTED = 100
WRITE_BATCH = 32


def _boxes(batch: int, rows: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    xy = rng.uniform(0, size * 0.7, (batch, rows, 2))
    return torch.from_numpy(np.concatenate([xy, xy + rng.uniform(16, size * 0.3, (batch, rows, 2))], -1)).float()


def training_throughput(device: torch.device, rows: int, steps: int) -> None:
    """Images/s of one SGD step: frozen body (head on banked phi) and fine-tuned body, for each head."""
    rng = np.random.default_rng(0)
    backbone_cfg = {"name": "efficientnet_lite0", "weights": "random", "weights_path": None}
    labels = torch.from_numpy(rng.integers(0, 2, (BATCH, NUM_CLASSES))).float().to(device)
    boxes = _boxes(BATCH, rows, IMAGE_SIZE, rng).to(device)
    prior = torch.rand(BATCH, rows).to(device)
    images = torch.randn(BATCH, 3, IMAGE_SIZE, IMAGE_SIZE).to(device)
    for head in ("gap_mlp", "flat_mlp", "backbone"):
        for frozen in (True, False):
            if head == "backbone" and device.type == "cpu":
                continue  # the EfficientNet tail per RoI: ~10 s per 800 RoIs forward on 2 cores, minutes a step
            model = TWDet(build_backbone(backbone_cfg), NUM_CLASSES, head=head, freeze_backbone=frozen).to(device)
            optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
            with torch.no_grad():
                phi = model.phi(model.body(images), boxes)

            def step() -> None:
                with autocast(device, True):
                    if frozen:
                        mc, md = model.from_phi(phi, prior)
                    else:
                        mc, md = model(images, boxes, prior)
                loss = probability_bce(image_scores(two_stream_scores(mc.float(), md.float())), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            step()  # warm-up
            count = steps if (frozen or device.type != "cpu") else 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(count):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            rate = count * BATCH / (time.perf_counter() - start)
            print(f"  train {device.type} head={head:9s} {'frozen (phi banked)' if frozen else 'fine-tuned body':20s}"
                  f" {rows} proposals: {rate:8.1f} images/s")


def _rows(n: int, rows: int, features: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Cache rows with the value statistics of real ones: S from softmaxes of logits, s' and p from S."""
    mc = torch.randn(n, rows, NUM_CLASSES) * 3
    md = torch.randn(n, rows, NUM_CLASSES) * 3
    s = two_stream_scores(mc, md)
    boxes = _boxes(n, rows, IMAGE_SIZE, rng).numpy()
    out = {"image_ids": np.arange(n), "num_real": np.full(n, rows), "boxes": boxes, "prior": rng.random((n, rows)),
           "mc": mc.numpy(), "md": md.numpy(), "scores": s.numpy(), "objectness": objectness(s).numpy(),
           "p": image_scores(s).numpy()}
    if features:
        # Post-activation-like maps: ReLU of a Gaussian (half zeros), as RoIAlign of a conv map gives.
        out["features"] = np.maximum(rng.standard_normal((n, NUM_SELECTED, CHANNELS, ROI_SIZE, ROI_SIZE)),
                                     0).astype(np.float16)
    return out


def _select_and_write(path: Path, n: int, rows: int, dtype: str, features: bool, compress_features: bool,
                      rng: np.random.Generator) -> float:
    """Stream ``n`` synthetic images into a cache as the stage does (a batch at a time); return seconds."""
    layout = CacheLayout(n, rows, NUM_CLASSES, NUM_SELECTED, dtype, CHANNELS if features else None)
    start = time.perf_counter()
    with cache_writer(path, layout, {}, compress_features=compress_features) as writer:
        for first in range(0, n, WRITE_BATCH):
            batch = _rows(min(WRITE_BATCH, n - first), rows, features, rng)
            picks = [select_proposals(b, s, rows, 0.4, NUM_SELECTED) for b, s in zip(batch["boxes"], batch["objectness"])]
            batch["selected"] = np.stack([p[0] for p in picks])
            batch["num_selected"] = np.array([p[1] for p in picks])
            batch["image_ids"] = batch["image_ids"] + first
            writer.write(first, batch)
    return time.perf_counter() - start


def cache_costs(rows: int, n: int) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for dtype in ("float32", "float16"):
            for features, compress in ((False, False), (True, False), (True, True)):
                path = Path(folder) / f"{dtype}_{features}_{compress}.h5"
                seconds = _select_and_write(path, n, rows, dtype, features, compress, rng)
                size = path.stat().st_size / n
                start = time.perf_counter()
                with TeacherCache(path) as cache:
                    for i in range(n):
                        cache.get(i)
                read = n / (time.perf_counter() - start)
                what = "with features" if features else "no features  "
                print(f"  cache {dtype} {what} {'gzip features' if compress else 'raw features ':13s}: "
                      f"{size / 1024:9.1f} KiB/image, write+select {n / seconds:7.1f} images/s, read {read:7.1f} images/s")


def streaming_memory(rows: int, n: int) -> None:
    """Peak Python/numpy memory of select + write for n and 4n images: it must not grow with n."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for count in (n, 4 * n):
            tracemalloc.start()
            _select_and_write(Path(folder) / f"m{count}.h5", count, rows, "float16", True, False, rng)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"  caching + selection of {count:5d} images (features on): peak {peak / 2**20:7.1f} MiB")


def stored_bytes(path: Path) -> None:
    with h5py.File(path, "r") as file:
        n = len(file["image_ids"])
        print(f"  {path} ({n} images), stored bytes per image by dataset:")
        for name, dataset in file.items():
            print(f"    {name:12s} {dataset.dtype!s:8s} {dataset.id.get_storage_size() / n / 1024:9.2f} KiB"
                  f"  (compression {dataset.compression})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=200, help="N proposals per image")
    parser.add_argument("--images", type=int, default=64, help="images for the cache measurements (and 4x)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per configuration")
    parser.add_argument("--cache", type=Path, help="a real cache file to report the stored bytes of")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CUDA: {torch.cuda.is_available()}")
    print(f"training throughput (batch {BATCH}, {IMAGE_SIZE} px, EfficientNet-Lite0, {NUM_CLASSES} classes):")
    training_throughput(torch.device("cpu"), args.proposals, args.steps)
    if torch.cuda.is_available():
        training_throughput(torch.device("cuda"), args.proposals, args.steps)
    print(f"cache ({args.proposals} proposals, {NUM_SELECTED} selected x {CHANNELS} x 7 x 7 features):")
    cache_costs(args.proposals, args.images)
    print("memory:")
    streaming_memory(args.proposals, args.images)
    if args.cache:
        stored_bytes(args.cache)


if __name__ == "__main__":
    main()
