"""COCO instances JSON -> image list and image-level label matrix, through pycocotools.

Protocol (METHOD.md §8, the paper's): classes ordered by category id; images on disk but absent from the JSON
are never seen (we list the JSON, not the folder); images with no instance annotation are dropped, counted
and logged (COCO 2014: 82,081 train / 40,137 val remain).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
from pathlib import Path

import numpy as np

from ..pipeline.atomic import write_text_atomic
from ..pipeline.errors import UserError, name_a_few
from .checks import check_instances
from .manifest import Split

log = logging.getLogger(__name__)

COCO2014 = {
    "train_annotations": "annotations/instances_train2014.json",
    "train_images": "train2014",
    "test_annotations": "annotations/instances_val2014.json",
    "test_images": "val2014",
}

_REQUIRED_LISTS = ("images", "annotations", "categories")


def _load_coco(ann_file: Path):
    from pycocotools.coco import COCO

    if not ann_file.is_file():
        raise UserError(f"{ann_file}: annotation file not found")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress chatter
            coco = COCO(str(ann_file))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{ann_file}: not valid JSON ({exc})") from None
    except (KeyError, TypeError, AssertionError) as exc:
        raise UserError(f"{ann_file}: not a COCO instances file (missing or malformed {exc})") from None
    for key in _REQUIRED_LISTS:
        if not isinstance(coco.dataset.get(key), list):
            raise UserError(f"{ann_file}: not a COCO instances file (no '{key}' list)")
    return coco


def load_coco_split(name: str, ann_file: str | Path, image_dir: str | Path, clipped_copy: Path | None = None) -> Split:
    """Read one split. Raises UserError naming the file when annotations or images are missing or malformed.

    Boxes sticking out of their image are clipped; with ``clipped_copy``, the clipped annotations are written
    there and the split points at them, so every later reader of the boxes sees the same ones.
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    coco = _load_coco(ann_file)
    clipped, boxes_file = check_instances(ann_file, coco.dataset), ann_file
    if clipped:
        if clipped_copy is not None:
            write_text_atomic(clipped_copy, json.dumps(coco.dataset))
            boxes_file = clipped_copy
        log.warning("%s: %d boxes stuck out of their image and were clipped to it (boxes now read from %s)",
                    ann_file, clipped, boxes_file)
    category_ids = sorted(coco.getCatIds())
    if not category_ids:
        raise UserError(f"{ann_file}: no categories")
    column = {cid: k for k, cid in enumerate(category_ids)}
    class_names = [coco.cats[cid]["name"] for cid in category_ids]

    image_ids, paths, widths, heights, rows = [], [], [], [], []
    dropped = 0
    for image_id in sorted(coco.getImgIds()):
        anns = coco.imgToAnns.get(image_id, [])
        if not anns:
            dropped += 1
            continue
        row = np.zeros(len(category_ids), np.uint8)
        row[[column[a["category_id"]] for a in anns]] = 1
        info = coco.imgs[image_id]
        image_ids.append(image_id)
        paths.append(image_dir / info["file_name"])
        widths.append(info.get("width", 0))
        heights.append(info.get("height", 0))
        rows.append(row)
    if dropped:
        log.info("%s: dropped %d of %d images with no instance annotation", ann_file, dropped, len(coco.imgs))

    missing = [p for p in paths if not p.is_file()]
    if missing:
        listed = name_a_few([p.name for p in missing])
        raise UserError(f"{image_dir}: {len(missing)} image files named in {ann_file.name} are missing: {listed}")
    if not image_ids:
        raise UserError(f"{ann_file}: no image has an instance annotation")

    return Split(
        name=name, image_ids=np.asarray(image_ids, np.int64), paths=paths,
        widths=np.asarray(widths, np.int64), heights=np.asarray(heights, np.int64),
        labels=np.stack(rows), class_names=class_names, category_ids=category_ids, annotations=boxes_file,
    )


def hold_out(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split training images into (train, val) at random; val keeps ``fraction`` of them (at least one)."""
    n = len(train)
    n_val = max(1, round(n * fraction)) if fraction > 0 else 0
    if n_val >= n:
        raise UserError(f"dataset.val_fraction={fraction} leaves no training image out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    val_index, train_index = np.sort(order[:n_val]), np.sort(order[n_val:])
    fit, val = train.subset(train_index), train.subset(val_index)
    return fit, dataclasses.replace(val, name="val")
