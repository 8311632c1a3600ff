"""The dataset stage: build (or locate) the images and write the manifest every later stage reads."""

from __future__ import annotations

import logging
from pathlib import Path

from ..pipeline.atomic import atomic_path
from .coco import COCO2014, hold_out, load_coco_split
from .manifest import Split, write_manifest
from .nuswide import load_nuswide

log = logging.getLogger(__name__)


def _coco_paths(cfg: dict, root: Path, out_dir: Path) -> dict[str, tuple[Path, Path]]:
    """(annotation file, image folder) per split, from the params (COCO 2014 or any COCO-format pair)."""
    layout = COCO2014 if cfg["source"] == "coco2014" else cfg["coco"]
    return {split: (root / layout[f"{split}_annotations"], root / layout[f"{split}_images"]) for split in ("train", "test")}


def _coco_splits(cfg: dict, out_dir: Path) -> dict[str, Split]:
    """Train and test of a COCO-format source; the built-in one is synthesised into ``out_dir`` first."""
    if cfg["source"] == "builtin":
        from .synthetic import synthesize

        builtin = cfg["builtin"]
        annotations = synthesize(out_dir, builtin, {"train": builtin["num_train"], "test": builtin["num_test"]})
        sources = {split: (annotations[split], out_dir / "images" / split) for split in ("train", "test")}
    else:
        sources = _coco_paths(cfg, Path(cfg["coco"]["root"]), out_dir)
    return {split: load_coco_split(split, ann, images, out_dir / f"instances_{split}_clipped.json")
            for split, (ann, images) in sources.items()}


def warn_classes_without_positives(split: Split) -> None:
    """A class no image of a split shows learns nothing there (train) or has no AP (val, test): say which."""
    empty = [name for name, count in zip(split.class_names, split.labels.sum(0)) if count == 0]
    if empty:
        log.warning("%s split: no image shows %d of %d classes: %s", split.name, len(empty), split.num_classes,
                    ", ".join(empty))


def prepare_dataset(cfg: dict, out_dir: str | Path) -> dict[str, int]:
    """Write ``out_dir`` (atomically): for the built-in source, its images and COCO JSON; always the manifest
    (the same for every source; only COCO-format ones have boxes).

    Returns the number of images per split.
    """
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        splits = load_nuswide(cfg["nuswide"]) if cfg["source"] == "nuswide" else _coco_splits(cfg, tmp)
        if splits["train"].class_names != splits["test"].class_names:
            raise ValueError("train and test annotation files list different categories")
        fit, val = hold_out(splits["train"], cfg["val_fraction"], cfg["split_seed"])
        splits = {"train": fit, "val": val, "test": splits["test"]}
        for split in splits.values():
            warn_classes_without_positives(split)
        write_manifest(tmp, splits, source=cfg["source"])
    counts = {name: len(split) for name, split in splits.items()}
    log.info("dataset %s: %s images, %d classes", cfg["source"], counts, fit.num_classes)
    return counts
