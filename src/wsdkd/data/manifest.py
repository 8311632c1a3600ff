"""The dataset manifest: what the dataset stage writes and every later stage reads.

A manifest directory holds ``classes.json`` (class names, COCO category ids, where the annotations came from)
and one Parquet table per split (``train``, ``val``, ``test``) with a row per image: ``image_id``, ``path``,
``width``, ``height`` and ``labels`` (a K-long 0/1 list in class order). ``val`` is held out of the training
images; it drives the LR schedule and threshold tuning and never touches the test set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..pipeline.errors import DamagedFile, UserError

SPLITS = ("train", "val", "test")
CLASSES_FILE = "classes.json"


@dataclass(frozen=True)
class Split:
    """One split of a dataset: image paths and their image-level label matrix."""

    name: str
    image_ids: np.ndarray  # (N,) int64
    paths: list[Path]  # absolute
    widths: np.ndarray  # (N,) int64
    heights: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N, K) uint8
    class_names: list[str]
    category_ids: list[int]
    annotations: Path | None  # COCO instances JSON with boxes, when the dataset has them

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: np.ndarray | list[int]) -> "Split":
        index = np.asarray(index, dtype=np.int64)
        return Split(
            name=self.name, image_ids=self.image_ids[index], paths=[self.paths[i] for i in index],
            widths=self.widths[index], heights=self.heights[index], labels=self.labels[index],
            class_names=self.class_names, category_ids=self.category_ids, annotations=self.annotations,
        )


def write_manifest(out_dir: Path, splits: dict[str, Split], source: str) -> None:
    """Write ``splits`` (all sharing one class list) to ``out_dir``; paths inside it are stored relative."""
    first = next(iter(splits.values()))
    info = {
        "source": source,
        "class_names": first.class_names,
        "category_ids": first.category_ids,
        "annotations": {name: relative_path(s.annotations, out_dir) if s.annotations else None for name, s in splits.items()},
        "num_images": {name: len(s) for name, s in splits.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CLASSES_FILE).write_text(json.dumps(info, indent=2) + "\n")
    for name, split in splits.items():
        table = pd.DataFrame({
            "image_id": split.image_ids.astype(np.int64),
            "path": [relative_path(p, out_dir) for p in split.paths],
            "width": split.widths.astype(np.int64),
            "height": split.heights.astype(np.int64),
            "labels": list(split.labels.astype(np.uint8)),
        })
        table.to_parquet(out_dir / f"{name}.parquet", index=False)


def read_split(manifest_dir: str | Path, name: str) -> Split:
    """Read split ``name`` of the manifest in ``manifest_dir``."""
    manifest_dir = Path(manifest_dir)
    info_path, table_path = manifest_dir / CLASSES_FILE, manifest_dir / f"{name}.parquet"
    for path in (info_path, table_path):
        if not path.is_file():
            raise UserError(f"{path}: dataset manifest file missing (run the dataset stage first)")
    try:
        info = json.loads(info_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedFile(info_path, f"not valid JSON ({exc})") from None
    try:
        table = pd.read_parquet(table_path)
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        raise DamagedFile(table_path, f"not a whole Parquet file ({type(exc).__name__})") from None
    labels = np.stack(table["labels"].to_numpy()).astype(np.uint8) if len(table) else np.zeros((0, len(info["class_names"])), np.uint8)
    annotations = info["annotations"].get(name)
    return Split(
        name=name,
        image_ids=table["image_id"].to_numpy(np.int64),
        paths=[_absolute(p, manifest_dir) for p in table["path"]],
        widths=table["width"].to_numpy(np.int64),
        heights=table["height"].to_numpy(np.int64),
        labels=labels,
        class_names=list(info["class_names"]),
        category_ids=[int(c) for c in info["category_ids"]],
        annotations=_absolute(annotations, manifest_dir) if annotations else None,
    )


def relative_path(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it, else absolute: files named so read the same in any checkout."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())


def _absolute(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (base / p).resolve()

