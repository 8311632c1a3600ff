"""Sharded, parallel, resumable proposal extraction for one split.

The image list is cut into shards of ``shard_size`` images. A pool of ``workers`` processes computes the shards
that are not yet in the resume folder, each written there atomically as a small proposals file; the finished
shards are then merged, in order, into the split's file. A killed run leaves only whole shards behind (a
worker's half-written temporary is removed by the next write of that shard), so the next run with the same
params and images redoes only the missing ones, and any shard that was damaged since.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..pipeline.errors import UserError
from ..pipeline.resume import fingerprint
from .boxes import fit_proposals
from .sources import ProposalSource, make_source
from .store import ProposalReader, merge_proposals, write_proposals

# IGNORE_ORIENTATION: COCO boxes and the PIL loader of the training stages use the stored pixel grid, not the
# EXIF-rotated one. IMREAD_COLOR turns grayscale and CMYK JPEGs into 3-channel BGR.
_IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def read_bgr(path: str | Path) -> np.ndarray:
    """The image at ``path`` as BGR uint8; a UserError naming the file if it cannot be decoded."""
    image = cv2.imread(str(path), _IMREAD_FLAGS)
    if image is None or image.size == 0:
        reason = "file not found" if not Path(path).is_file() else "empty, truncated or not an image"
        raise UserError(f"{path}: cannot read image ({reason})")
    return image


@dataclass(frozen=True)
class ShardTask:
    path: Path  # where the finished shard goes
    image_ids: list[int]
    image_paths: list[str]
    num_proposals: int
    skip_bad_images: bool


_source: ProposalSource | None = None  # one per worker process, built once by _start_worker


def _start_worker(cfg: dict[str, Any]) -> None:
    global _source
    cv2.setNumThreads(1)  # parallelism comes from the processes; OpenCV's own threads would oversubscribe cores
    _source = make_source(cfg)


def _run_shard(task: ShardTask) -> int:
    """Compute and write one shard; return its number of images."""
    n = task.num_proposals
    count = len(task.image_ids)
    boxes = np.zeros((count, n, 4), np.float32)
    scores = np.zeros((count, n), np.float32)
    num_real = np.zeros(count, np.int32)
    bad_images = []
    for row, (image_id, path) in enumerate(zip(task.image_ids, task.image_paths)):
        try:
            image = read_bgr(path)
        except UserError as exc:
            if not task.skip_bad_images:
                raise UserError(f"{exc} (set proposals.skip_bad_images: true to skip such images)") from None
            bad_images.append({"image_id": int(image_id), "path": str(path), "error": str(exc)})
            continue  # its rows stay zero with num_real 0
        height, width = image.shape[:2]
        boxes[row], scores[row], num_real[row] = fit_proposals(*_source(image, int(image_id)), width, height, n)
    write_proposals(task.path, np.asarray(task.image_ids, np.int64), boxes, scores, num_real,
                    {"bad_images": bad_images})
    return count


def resume_key(cfg: dict[str, Any], image_ids: Sequence[int], paths: Sequence[str | Path]) -> str:
    """What the shards depend on: the params and the exact image list (not the number of workers)."""
    return fingerprint(cfg, [int(i) for i in image_ids], [str(p) for p in paths])


def extract_shards(image_ids: Sequence[int], paths: Sequence[str | Path], cfg: dict[str, Any], folder: Path,
                   workers: int = 1, progress: bool = True) -> list[Path]:
    """Make sure every shard of the image list is in ``folder``; return the shard paths in image order.

    With ``workers > 1`` the pool's processes are spawned, which re-imports the caller's main module: a script
    calling this needs the usual ``if __name__ == "__main__":`` guard. With one worker (or one shard left) the
    work runs in this process, whose OpenCV is then set to one thread.
    """
    folder.mkdir(parents=True, exist_ok=True)
    size = int(cfg["shard_size"])
    tasks = [ShardTask(folder / f"shard_{start // size:06d}.h5", [int(i) for i in image_ids[start:start + size]],
                       [str(p) for p in paths[start:start + size]], int(cfg["num_proposals"]),
                       bool(cfg["skip_bad_images"]))
             for start in range(0, len(image_ids), size)]
    todo = [task for task in tasks if not ProposalReader.finished(task.path)]
    done = len(image_ids) - sum(len(task.image_ids) for task in todo)
    with tqdm(total=len(image_ids), initial=done, unit="img", desc="proposals", disable=not progress) as bar:
        if workers <= 1 or len(todo) <= 1:
            _start_worker(cfg)
            for task in todo:
                bar.update(_run_shard(task))
        elif todo:
            # spawn, not fork: a forked child can inherit OpenCV's thread pool in a locked state
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(todo)), initializer=_start_worker, initargs=(cfg,)) as pool:
                for count in pool.imap_unordered(_run_shard, todo):
                    bar.update(count)
    return [task.path for task in tasks]


def extract_proposals(image_ids: Sequence[int], paths: Sequence[str | Path], cfg: dict[str, Any], out: Path,
                      folder: Path, workers: int = 1, progress: bool = True) -> list[dict]:
    """Extract the proposals of an image list into ``out`` (resuming from ``folder``); return the bad images."""
    make_source(cfg)  # a bad config (missing model, unreadable external JSON) fails here, not in every worker
    shards = extract_shards(image_ids, paths, cfg, folder, workers, progress)
    return merge_proposals(shards, out, int(cfg["num_proposals"]), {"source": cfg["source"], "params": cfg})

