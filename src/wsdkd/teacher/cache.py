"""The teacher cache (METHOD.md section 3): one HDF5 file per split with everything distillation reads.

Datasets (``n`` images in the split's order, ``N`` proposal rows, ``K`` classes, ``M`` selected proposals):

- ``image_ids`` (n,) int64; ``num_real`` (n,) int32: distinct proposal rows (the rest are recycled copies)
- ``boxes`` (n, N, 4) float32, original pixels; ``prior`` (n, N) float32: the proposals' scores s_R
- ``mc``, ``md`` (n, N, K) logits M^c, M^d (``dtype``): enough to recompute S and every softened S of Eq. 6-7
- ``scores`` (n, N, K) S of Eq. 2 (``dtype``); ``objectness`` (n, N) float32 s'; ``p`` (n, K) float32
- ``selected`` (n, M) int32 rows kept by NMS on s' (recycled to M); ``num_selected`` (n,) int32
- ``features`` (n, M, C, 7, 7) float16, only with ``cache_features``: RoI features of the selected rows on
  the teacher's stride-16 map at the caching scale, before the a * s_R + b weighting (stage 1 weights by s')

Per-image datasets are chunked one image per chunk, so reading an image touches only its bytes. gzip (with
byte shuffling) is applied to the logits and S, which are small; the features, dense activations and by far
the largest part, are stored raw (benchmarks/bench_teacher.py measures both choices). Attributes describe how
the cache was made (see :func:`build_cache`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np
import torch

from ..data.manifest import Split
from ..pipeline import resume
from ..pipeline.atomic import atomic_path
from ..pipeline.errors import DamagedFile, UserError
from ..pipeline.per_image_h5 import PerImageH5, checksummed
from .inference import run_teacher
from .inputs import SplitProposals
from .selection import select_proposals
from .wsddn import FEATURE_STRIDE, ROI_SIZE, TWDet

CACHE_FORMAT, CACHE_FORMAT_VERSION = "wsdkd-teacher-cache", 1
DTYPES = {"float16": np.float16, "float32": np.float32}
_COMPRESSED = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
_INDEX_CHUNK = 4096  # rows per chunk of the small per-image vectors
_STAGE = "cache_teacher"  # names its resume folder


@dataclass(frozen=True)
class CacheLayout:
    num_images: int
    num_proposals: int
    num_classes: int
    num_selected: int
    dtype: str
    feature_channels: int | None  # None: no features


@dataclass
class CachedImage:
    """One image's rows of the cache (float32 arrays; ``features`` None when not cached)."""

    image_id: int
    boxes: np.ndarray
    prior: np.ndarray
    num_real: int
    mc: np.ndarray
    md: np.ndarray
    scores: np.ndarray
    objectness: np.ndarray
    p: np.ndarray
    selected: np.ndarray
    num_selected: int
    features: np.ndarray | None


class CacheWriter:
    """Fills rows of a cache opened by :func:`cache_writer`."""

    def __init__(self, file: h5py.File) -> None:
        self._file = file

    def write(self, start: int, rows: dict[str, np.ndarray]) -> None:
        """Write rows ``start ..`` of every dataset named in ``rows`` (cast to the dataset's dtype)."""
        for name, values in rows.items():
            dataset = self._file[name]
            dataset[start:start + len(values)] = np.asarray(values, dataset.dtype)


@contextlib.contextmanager
def cache_writer(path: str | Path, layout: CacheLayout, attrs: dict[str, Any],
                 compress_features: bool = False) -> Iterator[CacheWriter]:
    """Create the cache file at ``path`` atomically: it appears only once the block completes.

    ``compress_features`` gzips the features too (for measuring what it saves; off in the pipeline).
    """
    n, r, k, m = layout.num_images, layout.num_proposals, layout.num_classes, layout.num_selected
    dtype = DTYPES[layout.dtype]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as file:
        index_chunk = (min(max(n, 1), _INDEX_CHUNK),)
        create = checksummed(file)
        create("image_ids", (n,), np.int64, chunks=index_chunk)
        create("num_real", (n,), np.int32, chunks=index_chunk)
        create("num_selected", (n,), np.int32, chunks=index_chunk)
        create("boxes", (n, r, 4), np.float32, chunks=(1, r, 4))
        create("prior", (n, r), np.float32, chunks=(1, r))
        for name in ("mc", "md", "scores"):
            create(name, (n, r, k), dtype, chunks=(1, r, k), **_COMPRESSED)
        create("objectness", (n, r), np.float32, chunks=(1, r))
        create("p", (n, k), np.float32, chunks=(1, k))
        create("selected", (n, m), np.int32, chunks=(1, m))
        if layout.feature_channels is not None:
            shape = (m, layout.feature_channels, ROI_SIZE, ROI_SIZE)
            create("features", (n, *shape), np.float16, chunks=(1, *shape),
                   **(_COMPRESSED if compress_features else {}))
        file.attrs["format"], file.attrs["format_version"] = CACHE_FORMAT, CACHE_FORMAT_VERSION
        for key, value in attrs.items():
            file.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)
        yield CacheWriter(file)


class TeacherCache(PerImageH5):
    """Random access to a cache file without loading it: ``with TeacherCache(path) as cache: cache.get(i)``.

    ``image_ids``, ``num_real`` and ``num_selected`` are read at open; everything else image by image.
    """

    KIND = "teacher cache"
    HOW_TO_MAKE = "run the cache_teacher stage first"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.num_selected: np.ndarray = self._file["num_selected"][:]

    def check(self, file: h5py.File) -> None:
        if file.attrs.get("format") != CACHE_FORMAT:
            raise DamagedFile(self.path, "not a teacher cache file")
        if int(file.attrs["format_version"]) > CACHE_FORMAT_VERSION:
            raise UserError(f"{self.path}: cache format {file.attrs['format_version']} is newer than this "
                            f"wsdkd reads ({CACHE_FORMAT_VERSION}); upgrade wsdkd")

    @property
    def has_features(self) -> bool:
        return "features" in self._file

    @property
    def attrs(self) -> dict[str, Any]:
        """The cache's attributes, JSON strings decoded."""
        out = {}
        for key, value in self._file.attrs.items():
            try:
                out[key] = json.loads(value) if isinstance(value, str) else value
            except json.JSONDecodeError:
                out[key] = value
        return out

    def read(self, name: str, index: int) -> np.ndarray:
        """Row ``index`` of dataset ``name`` as float32 (or its integer type)."""
        row = self._read(name, index)
        return row.astype(np.float32) if row.dtype == np.float16 else row

    def image_scores(self) -> np.ndarray:
        """p (n, K) of every image: a few bytes per image, for predictions and reports."""
        return self._read("p")

    def get(self, index: int, features: bool = True) -> CachedImage:
        """Everything cached for the image at row ``index``; ``features=False`` skips the largest dataset."""
        read = self.read
        return CachedImage(
            image_id=int(self.image_ids[index]), boxes=read("boxes", index), prior=read("prior", index),
            num_real=int(self.num_real[index]), mc=read("mc", index), md=read("md", index),
            scores=read("scores", index), objectness=read("objectness", index), p=read("p", index),
            selected=read("selected", index), num_selected=int(self.num_selected[index]),
            features=read("features", index) if features and self.has_features else None)


def build_cache(model: TWDet, split: Split, proposals: SplitProposals, cfg: dict, size: int, path: Path,
                batch_size: int, device: torch.device, amp: bool, num_workers: int = 0,
                attrs: dict[str, Any] | None = None, progress: bool = True) -> None:
    """Run the teacher over ``split`` at ``size`` and stream its outputs into the cache at ``path``.

    ``cfg`` is the ``cache`` params section: ``cache_features``, ``nms_iou``, ``num_selected``, ``dtype``.
    Memory holds one batch at a time.
    """
    layout = CacheLayout(len(split), proposals.num_proposals, split.num_classes, cfg["num_selected"], cfg["dtype"],
                         model.channels if cfg["cache_features"] else None)
    attrs = {**(attrs or {}), "split": split.name, "cache_scale": size, "class_names": split.class_names,
             "nms_iou": cfg["nms_iou"], "roi_op": model.roi_op, "a": model.a, "b": model.b,
             "feature_stride": FEATURE_STRIDE, "params": cfg}
    with cache_writer(path, layout, attrs) as writer:
        for batch in run_teacher(model, split, proposals, size, batch_size, device, amp, num_workers, progress):
            picks = [select_proposals(b, s, n, cfg["nms_iou"], cfg["num_selected"])
                     for b, s, n in zip(batch.boxes, batch.objectness, batch.num_real)]
            selected = np.stack([rows for rows, _ in picks])
            rows = {"image_ids": split.image_ids[batch.indices], "num_real": batch.num_real,
                    "num_selected": np.array([count for _, count in picks]), "boxes": batch.boxes,
                    "prior": batch.prior, "mc": batch.mc, "md": batch.md, "scores": batch.scores,
                    "objectness": batch.objectness, "p": batch.p, "selected": selected}
            if cfg["cache_features"]:
                chosen = torch.as_tensor(selected, dtype=torch.long, device=batch.input_boxes.device)
                boxes = torch.gather(batch.input_boxes, 1, chosen[..., None].expand(-1, -1, 4))
                with torch.no_grad():
                    pooled = model.pool(batch.maps.float(), boxes)
                rows["features"] = pooled.view(len(selected), cfg["num_selected"], *pooled.shape[1:]).cpu().numpy()
            writer.write(int(batch.indices[0]), rows)


def cache_teacher(teacher_cfg: dict, cache_cfg: dict, manifest_dir: Path, proposals_dir: Path, model_dir: Path,
                  out_dir: Path, progress: bool = True) -> None:
    """Write ``out_dir/{train,val,test}.h5`` from the teacher in ``model_dir`` (the folder appears whole).

    Each split's file waits in the resume folder until all are done, so a killed run redoes only the split it
    was writing.
    """
    from ..data.manifest import SPLITS, read_split
    from ..engine.device import resolve_device
    from .wsddn import TEACHER_FILE, load_teacher

    splits = {name: read_split(manifest_dir, name) for name in SPLITS}
    model, description = load_teacher(model_dir / TEACHER_FILE, splits["train"].class_names)
    device = resolve_device(teacher_cfg["device"], "teacher.device")
    size = description["params"]["cache_scale"]
    proposals = {name: SplitProposals(split, proposals_dir / f"{name}.h5") for name, split in splits.items()}
    try:
        key = resume.fingerprint(teacher_cfg, cache_cfg, resume.file_digest(model_dir / TEACHER_FILE),
                                 {name: [split.image_ids.tolist(), resume.file_digest(proposals[name].reader.path)]
                                  for name, split in splits.items()})
        done = resume.resume_dir(_STAGE, key)
        for name, split in splits.items():
            if not TeacherCache.finished(done / f"{name}.h5"):
                build_cache(model, split, proposals[name], cache_cfg, size, done / f"{name}.h5",
                            teacher_cfg["batch_size"], device, teacher_cfg["amp"], teacher_cfg["num_workers"],
                            attrs={"proposals": str(proposals[name].reader.path)}, progress=progress)
    finally:
        for reader in proposals.values():
            reader.close()
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for name in splits:
            shutil.move(done / f"{name}.h5", tmp / f"{name}.h5")
    resume.clear(_STAGE)
