"""The paper's COCO 2014 setup on a handful of real photos: the configuration of the paper-scale smoke test and
of the cost model (benchmarks/cost_model.py).

It applies the ``coco2014_paper`` preset as a user would (``wsdkd preset coco2014_paper --data-root ROOT``), to
a COCO 2014-shaped folder holding the first photos of ../shared/data/coco-mini, and changes only what a CPU run
must: the number of images and the epochs (1 each), random initial weights (no ImageNet file here; nothing is
downloaded) and, for the teacher at 832 px, a memory cap that makes it accumulate micro-batches. Every size the
paper sets stays: VGG16, the five teacher scales with flips, 500 proposals, caching at 672 with the RoI
features, the student at 224, batch 32.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .presets import apply_preset
from .stage_runner import ordered_stages, run_stages, stage_env

PRESET = "coco2014_paper"
# What the smoke run changes beyond the preset: epochs and initial weights only (and the cap, to run micro-batches).
SMOKE_SETTINGS = {"teacher.backbone.weights": "random", "student.backbone.weights": "random",
                  "teacher.epochs": 1, "student.epochs": 1, "distill.features.epochs": 1,
                  "train.memory_cap_gb": 3.0}
# coco-mini's folders and the COCO 2014 names the preset's dataset.source expects (data/prepare.py).
LAYOUT = {"train": ("train2017", "train2014"), "test": ("val2017", "val2014")}


def coco2014_folder(coco_mini: Path, root: Path, counts: dict[str, int]) -> Path:
    """``root`` laid out as COCO 2014 (annotations/instances_{train,val}2014.json, train2014/, val2014/) with the
    first ``counts[split]`` annotated photos of coco-mini (by image id); the photos are linked, not copied."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, (source, target) in LAYOUT.items():
        data = json.loads((coco_mini / "annotations" / f"instances_{source}.json").read_text())
        annotated = {a["image_id"] for a in data["annotations"]}
        keep = sorted(i["id"] for i in data["images"] if i["id"] in annotated)[:counts[split]]
        kept = set(keep)
        data["images"] = [i for i in data["images"] if i["id"] in kept]
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
        (root / "annotations" / f"instances_{target}.json").write_text(json.dumps(data))
        link = root / target
        if not link.exists():
            link.symlink_to((coco_mini / source).resolve(), target_is_directory=True)
    return root


def prepare(project: Path, coco_mini: Path, root: Path, counts: dict[str, int], settings: dict | None = None) -> dict:
    """A scratch run folder at ``root``: params.yaml from the project's with the preset and SMOKE_SETTINGS (and
    ``settings``) applied, the stage scripts linked. Returns the params."""
    root.mkdir(parents=True, exist_ok=True)
    data_root = coco2014_folder(coco_mini, root / "coco2014", counts)
    shutil.copy(project / "params.yaml", root / "params.yaml")
    if not (root / "stages").exists():
        (root / "stages").symlink_to(project / "stages", target_is_directory=True)
    return apply_preset(PRESET, root / "params.yaml", str(data_root), {**SMOKE_SETTINGS, **(settings or {})})


def run(project: Path, coco_mini: Path, root: Path, counts: dict[str, int], settings: dict | None = None,
        names=None, echo=print) -> dict[str, dict]:
    """Prepare ``root`` and run every stage of the DAG there (or ``names``); each stage's measurements."""
    prepare(project, coco_mini, root, counts, settings)
    return run_stages(root, ordered_stages(project), stage_env(root, project), names, echo)
