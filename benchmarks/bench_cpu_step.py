"""The student's SGD step alone on random tensors, in three memory layouts / precisions, side by side on CPU.

    python benchmarks/bench_cpu_step.py [--steps 4] [--batch 32] [--size 96]

What the levers of issue 18 can buy inside the step, with no data loading: contiguous NCHW with the package's
separate zero-padding modules (before), channels_last with them, channels_last with the symmetric padding folded
into the convs (``backbones.zoo.fold_symmetric_padding``: today's) and that under bfloat16 autocast (not adopted:
see the README).
The variants alternate step by step so a busy neighbour slows all alike; it prints the median wall-clock and CPU
milliseconds per step.
"""

from __future__ import annotations

import argparse
import copy
import time

import wsdkd  # noqa: F401  (first: it sets the OpenMP wait policy, which torch reads as it loads)
import numpy as np
import torch

from wsdkd.backbones.zoo import build_backbone
from wsdkd.student.model import StudentClassifier

VARIANTS = {"contiguous, padding apart": (False, False, False), "channels_last, padding apart": (True, False, False),
            "channels_last": (True, False, True), "channels_last + bf16": (True, True, True)}


def pad_apart(model: torch.nn.Module) -> torch.nn.Module:
    """The package's own convs: the zero padding that ``fold_symmetric_padding`` folded into its convs as a
    separate ``ZeroPad2d`` again, as before issue 18. A deep copy; the parameters' values are the same."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(getattr(module, "static_padding", None), torch.nn.Identity) and module.padding != (0, 0):
            (top, left), module.padding = module.padding, (0, 0)
            module.static_padding = torch.nn.ZeroPad2d((left, left, top, top))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--classes", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)
    folded = StudentClassifier(build_backbone({"name": "efficientnet_lite0", "weights": "imagenet",
                                               "weights_path": None}), args.classes).train()
    models = {True: folded, False: pad_apart(folded)}
    images = torch.randn(args.batch, 3, args.size, args.size)
    labels = (torch.rand(args.batch, args.classes) < 0.3).float()
    optimizers = {key: torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) for key, model in models.items()}

    def step(channels_last: bool, bf16: bool, fold: bool) -> np.ndarray:
        model, optimizer = models[fold], optimizers[fold]
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
    base = np.median(seconds["contiguous, padding apart"], axis=0)
    for name, values in seconds.items():
        wall, cpu = np.median(values, axis=0)
        print(f"  {name:28s} {wall * 1000:6.0f} ms wall ({args.batch / wall:5.1f} img/s), {cpu * 1000:6.0f} ms CPU; "
              f"speed-up {base[0] / wall:.2f}x ({base[1] / cpu:.2f}x CPU)")


if __name__ == "__main__":
    main()
