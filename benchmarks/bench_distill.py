"""Stage 1 step time: the teacher's RoI features read from the cache versus computed by the frozen teacher online.

    python benchmarks/bench_distill.py [--steps 8] [--params params.yaml]

Reads the DAG's outputs (data/dataset, data/teacher_cache built with cache.cache_features: true, models/teacher)
and times full SGD steps of stage 1 (forward, L_f, backward, update) on the same training batches both ways.
Timings on a shared CPU are noisy: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import time

import wsdkd  # noqa: F401  (first: it sets the OpenMP wait policy, which torch reads as it loads)
import torch
from torch.utils.data import DataLoader

from dag_outputs import add_arguments, open_outputs
from wsdkd.backbones.zoo import build_backbone
from wsdkd.distill.training import FeatureStep, FeatureStudent, _datasets, feature_adapter
from wsdkd.student.model import StudentClassifier


def time_steps(step: FeatureStep, model: FeatureStudent, batches: list, device: torch.device) -> float:
    """Seconds per step, after one warm-up step."""
    optimizer = torch.optim.SGD(model.conv_parameters(step.cfg["layer"]), lr=1e-4)
    seconds = []
    for images, labels, rows in batches:
        start = time.perf_counter()
        loss = step(model, images.to(device), labels.to(device), rows)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return sum(seconds[1:]) / max(1, len(seconds) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    params, splits, teacher, parts = open_outputs(args)
    student_cfg, cfg = params["student"], {**params["distill"]["features"], "method": "roi", "hflip": False}
    device = next(teacher.parameters()).device
    if not parts[0].targets.cache.has_features:
        raise SystemExit(f"{args.cache}: no cached features; build the cache with cache.cache_features: true")
    student = StudentClassifier(build_backbone(student_cfg["backbone"], "student.backbone"),
                                splits["train"].num_classes)
    model = FeatureStudent(student, feature_adapter("roi", cfg["layer"], student, teacher, cfg["hint_stride"]))
    model.to(device).train()
    train = _datasets(splits, student_cfg["input_size"], student.backbone.mean, student.backbone.std, None)["train"]
    loader = DataLoader(train, batch_size=student_cfg["batch_size"], shuffle=False)
    batches = [batch for batch, _ in zip(loader, range(args.steps + 1))]
    print(f"stage 1 ({cfg['layer']} layer, {cfg['roi_source']} RoIs), batch {student_cfg['batch_size']}, student "
          f"{student_cfg['input_size']} px, teacher {parts[0].targets.scale} px, {device.type}, "
          f"{torch.get_num_threads()} threads, {args.steps} timed steps")
    timings = {}
    for cached in (True, False):
        step = FeatureStep(parts, cfg, teacher, student_cfg["input_size"], cached)
        timings[cached] = time_steps(step, model, batches, device)
        print(f"  teacher features {'from the cache' if cached else 'online':15s} {timings[cached]:.3f} s/step "
              f"({student_cfg['batch_size'] / timings[cached]:.1f} images/s)")
    print(f"  online / cached step time: {timings[False] / timings[True]:.2f}x")
    for part in parts:
        part.targets.close()


if __name__ == "__main__":
    main()
