"""NUS-WIDE's official lists -> image list and image-level label matrix (METHOD.md §8).

Layout, as distributed: ``ConceptsList/Concepts81.txt`` (one concept a line: the class order),
``ImageList/Imagelist.txt`` (every image; its line number is the image id), ``ImageList/{Train,Test}Imagelist.txt``
(the official split, Windows paths relative to the image folder) and
``Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt`` (one 0/1 a line, in the order of that list).

Protocol: images with none of the 81 labels are dropped (METHOD.md §8), and so are images missing or unreadable
on disk (every download of the Flickr photos misses some); both are counted and logged. The paper's
150,000 / 59,347 split is not published, so user lists of image names may replace the official split.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..pipeline.errors import UserError, name_a_few
from .manifest import Split

log = logging.getLogger(__name__)

CONCEPTS = "ConceptsList/Concepts81.txt"
ALL_IMAGES = "ImageList/Imagelist.txt"
OFFICIAL_LISTS = {"train": "ImageList/TrainImagelist.txt", "test": "ImageList/TestImagelist.txt"}
LABELS = "Groundtruth/TrainTestLabels"
LABEL_PART = {"train": "Train", "test": "Test"}  # Labels_<concept>_<part>.txt
_LABEL_FILE = re.compile(r"Labels_(?P<concept>.+)_(?P<part>Train|Test)\.txt")
HEADER_READERS = 16  # threads reading image headers: on a network file system the waits overlap


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the non-empty lines of a list file, stripped (the official files end lines with CRLF)."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    lines = enumerate(path.read_text(errors="replace").splitlines(), start=1)
    return [(number, line.strip()) for number, line in lines if line.strip()]


def image_key(entry: str) -> str:
    """``folder/file.jpg``: how an image is named the same in Imagelist.txt (``C:\\ImageData\\Flickr\\actor\\x.jpg``),
    the split lists (``actor\\x.jpg``) and a user's list (either, or with forward slashes)."""
    return "/".join(entry.replace("\\", "/").split("/")[-2:])


def _index(path: Path) -> dict[str, int]:
    """Image key -> line number (1-based) of a list file; an image listed twice is an error."""
    index: dict[str, int] = {}
    for number, entry in _lines(path):
        key = image_key(entry)
        if key in index:
            raise UserError(f"{path}: line {number}: image {key!r} is listed twice (first on line {index[key]})")
        index[key] = number
    return index


def read_concepts(root: Path) -> list[str]:
    path = root / CONCEPTS
    concepts = [text for _, text in _lines(path)]
    if not concepts:
        raise UserError(f"{path}: no concept listed")
    if len(set(concepts)) != len(concepts):
        twice = sorted({c for c in concepts if concepts.count(c) > 1})
        raise UserError(f"{path}: concepts listed twice: {', '.join(twice)}")
    return concepts


def _label_column(path: Path, num_images: int, image_list: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path}: label file not found")
    values = np.array(path.read_bytes().split())
    if len(values) != num_images:
        raise UserError(f"{path}: {len(values)} labels, but {image_list.name} lists {num_images} images")
    bad = np.flatnonzero((values != b"0") & (values != b"1"))
    if len(bad):
        raise UserError(f"{path}: value {bad[0] + 1} is {values[bad[0]].decode(errors='replace')!r}, expected 0 or 1")
    return values == b"1"


def read_labels(root: Path, concepts: list[str], part: str, num_images: int, image_list: Path) -> np.ndarray:
    """(num_images, K) uint8 labels of one official list; a label file of a concept not in Concepts81 is an error
    (it means the concept list and the labels come from different releases)."""
    folder = root / LABELS
    known = set(concepts)
    for path in sorted(folder.glob(f"Labels_*_{part}.txt")):
        concept = _LABEL_FILE.fullmatch(path.name)["concept"]
        if concept not in known:
            raise UserError(f"{path}: concept {concept!r} is not in {CONCEPTS}")
    columns = [_label_column(folder / f"Labels_{c}_{part}.txt", num_images, image_list) for c in concepts]
    return np.stack(columns, axis=1).astype(np.uint8)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header, or None when it is missing or not an image."""
    try:
        with Image.open(path) as image:
            return image.size
    except (FileNotFoundError, UnidentifiedImageError, OSError):
        return None


def _split(name: str, keys: list[str], labels: np.ndarray, ids: np.ndarray, concepts: list[str],
           image_dir: Path, source: Path) -> Split:
    """The usable images of one split: labelled, and readable under ``image_dir``."""
    labelled = labels.any(axis=1)
    if not labelled.all():
        log.info("%s: dropped %d of %d images with no label", source, int((~labelled).sum()), len(keys))
    keep, sizes, unreadable = [], [], []
    candidates = np.flatnonzero(labelled)
    with ThreadPoolExecutor(HEADER_READERS) as pool:
        found = pool.map(_image_size, [image_dir / keys[i] for i in candidates])
    for i, size in zip(candidates, found):
        if size is None:
            unreadable.append(keys[i])
        else:
            keep.append(i)
            sizes.append(size)
    if unreadable:
        log.warning("%s: dropped %d of %d labelled images missing or unreadable under %s: %s", source,
                    len(unreadable), int(labelled.sum()), image_dir, name_a_few(unreadable))
    if not keep:
        raise UserError(f"{source}: no usable image ({int((~labelled).sum())} without a label, "
                        f"{len(unreadable)} missing or unreadable under {image_dir})")
    sizes = np.asarray(sizes, np.int64)
    return Split(
        name=name, image_ids=ids[keep], paths=[image_dir / keys[i] for i in keep],
        widths=sizes[:, 0], heights=sizes[:, 1], labels=labels[keep], class_names=concepts,
        category_ids=list(range(1, len(concepts) + 1)), annotations=None,
    )


def _check_listed(index: dict[str, int], known, path: Path, where: str) -> None:
    """Every image of a list file must be in ``known`` (described as ``where``)."""
    for key, number in index.items():
        if key not in known:
            raise UserError(f"{path}: line {number}: image {key!r} is not in {where}")


def load_nuswide(cfg: dict) -> dict[str, Split]:
    """``{"train": ..., "test": ...}`` from the ``dataset.nuswide`` params; any list problem is one UserError line."""
    root = Path(cfg["root"])
    concepts = read_concepts(root)
    ids = _index(root / ALL_IMAGES)
    # Every image of the official lists, with its labels: a user split picks from these.
    labels_of: dict[str, np.ndarray] = {}
    for name, relative in OFFICIAL_LISTS.items():
        path = root / relative
        index = _index(path)
        _check_listed(index, ids, path, ALL_IMAGES)
        labels_of.update(zip(index, read_labels(root, concepts, LABEL_PART[name], len(index), path)))

    chosen: dict[str, tuple[Path, list[str]]] = {}
    for name, relative in OFFICIAL_LISTS.items():
        path = root / (cfg[f"{name}_list"] or relative)
        index = _index(path)
        if not index:
            raise UserError(f"{path}: no image listed")
        _check_listed(index, labels_of, path, "the official train and test lists")
        chosen[name] = (path, list(index))
    shared = set(chosen["train"][1]) & set(chosen["test"][1])
    if shared:
        raise UserError(f"{chosen['test'][0]}: {len(shared)} images are also in {chosen['train'][0]}: "
                        f"{name_a_few(sorted(shared))}")

    image_dir = root / cfg["images"]
    return {
        name: _split(name, keys, np.stack([labels_of[k] for k in keys]),
                     np.array([ids[k] for k in keys], np.int64), concepts, image_dir, path)
        for name, (path, keys) in chosen.items()
    }
