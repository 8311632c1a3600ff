"""The student's SGD step alone on random tensors, in three memory layouts / precisions, side by side on CPU.

    python benchmarks/bench_cpu_step.py [--steps 4] [--batch 32] [--size 96]

What the levers of issue 18 can buy inside the step, with no data loading: contiguous NCHW (before), channels_last
(``train.channels_last``, now on CPU too) and channels_last under bfloat16 autocast (not adopted: see the README).
The variants alternate step by step so a busy neighbour slows all alike; it prints the median wall-clock and CPU
milliseconds per step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wsdkd.backbones.zoo import build_backbone
from wsdkd.student.model import StudentClassifier

VARIANTS = {"contiguous": (False, False), "channels_last": (True, False), "channels_last + bf16": (True, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--classes", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = StudentClassifier(build_backbone({"name": "efficientnet_lite0", "weights": "imagenet",
                                              "weights_path": None}), args.classes).train()
    images = torch.randn(args.batch, 3, args.size, args.size)
    labels = (torch.rand(args.batch, args.classes) < 0.3).float()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step(channels_last: bool, bf16: bool) -> np.ndarray:
        start = np.array([time.perf_counter(), time.process_time()])
        layout = torch.channels_last if channels_last else torch.contiguous_format
        model.to(memory_format=layout)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(images.contiguous(memory_format=layout))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return np.array([time.perf_counter(), time.process_time()]) - start

    for variant in VARIANTS.values():  # warm-up: oneDNN builds its kernels once per layout
        step(*variant)
    seconds = {name: [] for name in VARIANTS}
    for _ in range(args.steps):
        for name, variant in VARIANTS.items():
            seconds[name].append(step(*variant))
    print(f"EfficientNet-Lite0 student, batch {args.batch}, {args.size} px, {torch.get_num_threads()} threads")
    base = np.median(seconds["contiguous"], axis=0)
    for name, values in seconds.items():
        wall, cpu = np.median(values, axis=0)
        print(f"  {name:22s} {wall * 1000:6.0f} ms wall ({args.batch / wall:5.1f} img/s), {cpu * 1000:6.0f} ms CPU; "
              f"speed-up {base[0] / wall:.2f}x ({base[1] / cpu:.2f}x CPU)")


if __name__ == "__main__":
    main()
