"""How hard each table row's distillation losses pull on the student: gradient norms at the start of training.

    python benchmarks/loss_gradients.py [--params params.yaml] [--tables workflow/tables.yaml] [--batches 4]

For every distilled row of the tables file (params.yaml with the row's overrides), on the same training batches
and from the same ImageNet-initialised student, with the losses of the trainers' own steps:

- stage 1 (FeatureStep: L_f of Eq. 3-4, or FitNets' hint): the loss, its gradient norm on the convs stage 1
  trains, and one SGD step at the row's `distill.features.lr` relative to the norm of the weights it reaches;
- stage 2 (PredictionStep): the gradient norm of the BCE of Eq. 10 and what the row's soft loss (and attention
  transfer) adds to it; gradients are linear, so that is the whole loss's gradient minus the BCE's.

Terms whose gradients differ by orders of magnitude cannot share one learning rate or weight: this is how the
comparison rows' settings in workflow/tables.yaml were checked.
"""

from __future__ import annotations

import argparse
from itertools import islice
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dag_outputs import add_arguments, open_outputs
from wsdkd.backbones.zoo import build_backbone
from wsdkd.distill.training import (DistilledStudent, FeatureStep, FeatureStudent, PredictionStep, _datasets,
                                    feature_adapter, uses_cached_features)
from wsdkd.paper.tables import apply_overrides, load_tables
from wsdkd.student.model import StudentClassifier


def gradient(loss: torch.Tensor, parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    """d loss / d parameters as one vector (zeros for parameters the loss does not reach)."""
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, parameters)])


def stage1(student_cfg: dict, cfg: dict, parts, teacher, batches: list) -> str:
    student = fresh_student(student_cfg, len(parts[0].targets.split.class_names))
    model = FeatureStudent(student, feature_adapter(cfg["method"], cfg["layer"], student, teacher,
                                                    cfg["hint_stride"])).train()
    step = FeatureStep(parts, cfg, teacher, student_cfg["input_size"],
                       uses_cached_features(cfg, parts[0].targets.cache.has_features))
    trained = model.conv_parameters(cfg["layer"])
    losses, grads = zip(*[(loss.item(), gradient(loss, trained))
                          for loss in (step(model, *batch)["loss"] for batch in batches)])
    reached = torch.cat([p.detach().flatten() for p in trained])[grads[0] != 0]
    norm = sum(g.norm().item() for g in grads) / len(grads)
    return (f"{cfg['method']:8s} loss {sum(losses) / len(losses):9.4g} |grad| {norm:9.4g} "
            f"lr {cfg['lr']:g}: step/|w| {cfg['lr'] * norm / reached.norm().item():.2g}")


def stage2(student_cfg: dict, cfg: dict, parts, teacher, batches: list) -> str:
    num_classes = len(parts[0].targets.split.class_names)
    num_proposals = int(parts[0].targets.cache.read("prior", 0).shape[0])
    grads = []
    for change in ({"soft_loss": "none", "attention_weight": 0.0}, {}):
        run = {**cfg, **change}
        model = DistilledStudent(fresh_student(student_cfg, num_classes), num_classes, num_proposals, run).train()
        step = PredictionStep(parts, run, teacher if run["attention_weight"] > 0 else None, hflip=False)
        weights = list(model.student.parameters())
        grads.append([gradient(step(model, *batch)["loss"], weights) for batch in batches])
    bce = sum(g.norm().item() for g in grads[0]) / len(batches)
    soft = sum((g - b).norm().item() for g, b in zip(grads[1], grads[0])) / len(batches)
    attention = f" + attention x {cfg['attention_weight']:g}" if cfg["attention_weight"] > 0 else ""
    return f"BCE |grad| {bce:.4g}; {cfg['soft_loss']} (lambda {cfg['lam']:g}){attention} adds |grad| {soft:.4g}"


def fresh_student(student_cfg: dict, num_classes: int) -> StudentClassifier:
    torch.manual_seed(student_cfg["seed"])
    return StudentClassifier(build_backbone(student_cfg["backbone"], "student.backbone"), num_classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--tables", type=Path, default=Path("workflow/tables.yaml"))
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args()
    rows, _ = load_tables(args.tables)
    params, splits, teacher, parts = open_outputs(args, torch.device("cpu"))
    student_cfg = params["student"]
    probe = fresh_student(student_cfg, splits["train"].num_classes).backbone
    train = _datasets(splits, student_cfg["input_size"], probe.mean, probe.std, None)["train"]
    batches = list(islice(DataLoader(train, batch_size=student_cfg["batch_size"], shuffle=False), args.batches))
    print(f"{args.batches} batches of {student_cfg['batch_size']}, ImageNet {student_cfg['backbone']['name']} at "
          f"{student_cfg['input_size']} px, teacher at {parts[0].targets.scale} px")
    for row in rows.values():
        if row.model != "student_w":
            continue
        row_params = apply_overrides(params, row.overrides, f"{args.tables}: row {row.name}")
        student_cfg, distill = row_params["student"], row_params["distill"]
        print(f"{row.name}:")
        if distill["features"]["method"] != "none":
            print("  stage 1: " + stage1(student_cfg, distill["features"], parts, teacher, batches))
        print("  stage 2: " + stage2(student_cfg, distill["predictions"], parts, teacher, batches))
    for part in parts:
        part.targets.close()


if __name__ == "__main__":
    main()
