"""The built-in dataset: procedural shapes in cluttered scenes, written in the COCO instances format (METHOD.md §9).

It has to be a fair miniature of multi-label classification, not a toy: objects are small (8-20% of the image
side), share their random colours and textures with distractor blobs so that only shape tells the classes apart,
sit on noisy gradients crossed by lines, and come in co-occurrence "scenes" so class dependencies exist to learn.
Each image draws from its own random stream, keyed by (seed, split name, index), so image i is the same whatever
the split sizes: a small configuration is a prefix of a large one.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..pipeline.atomic import write_text_atomic
from ..pipeline.errors import UserError

# --- Shapes -----------------------------------------------------------------------------------------------------
# A shape is a list of parts in unit coordinates (y pointing down): (K, 2) polygons that are filled (True) or cut
# out of what was filled before (False). Scale, rotation and aspect are applied when drawing.
Part = tuple[np.ndarray, bool]

ROUND_VERTICES = 48  # enough for a smooth circle at 50 px
STAR_INNER_RADIUS = 0.42
RING_INNER_RADIUS = 0.55
CROSS_HALF_WIDTH = 0.3
DIAMOND_HALF_WIDTH = 0.55  # a rhombus clearly narrower than a rotated square even after aspect jitter
CRESCENT_CUT_OFFSET, CRESCENT_CUT_RADIUS = 0.4, 0.85
HOURGLASS_HALF_WAIST = 0.12


def _arc(radius: float, start: float, stop: float, n: int = ROUND_VERTICES, centre: tuple[float, float] = (0, 0)) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def _regular(n: int, radius: float = 1.0, phase: float = -math.pi / 2) -> np.ndarray:
    return _arc(radius, phase, phase + 2 * math.pi, n + 1)[:-1]


def _polygon(*points: tuple[float, float]) -> list[Part]:
    return [(np.array(points, dtype=np.float64), True)]


def _circle() -> list[Part]:
    return [(_regular(ROUND_VERTICES), True)]


def _square() -> list[Part]:
    return _polygon((-1, -1), (1, -1), (1, 1), (-1, 1))


def _triangle() -> list[Part]:
    return [(_regular(3), True)]


def _star() -> list[Part]:
    radii = np.where(np.arange(10) % 2 == 0, 1.0, STAR_INNER_RADIUS)
    t = -math.pi / 2 + np.arange(10) * math.pi / 5
    return [(np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1), True)]


def _cross() -> list[Part]:
    w = CROSS_HALF_WIDTH
    return _polygon((-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w))


def _ring() -> list[Part]:
    return [(_regular(ROUND_VERTICES), True), (_regular(ROUND_VERTICES, RING_INNER_RADIUS), False)]


def _diamond() -> list[Part]:
    return _polygon((0, -1), (DIAMOND_HALF_WIDTH, 0), (0, 1), (-DIAMOND_HALF_WIDTH, 0))


def _crescent() -> list[Part]:
    # One polygon (so the COCO segmentation is exact): the unit circle's arc outside the cut circle, then the cut
    # circle's arc back inside it. The circles meet at x = (1 + d^2 - r^2) / 2d.
    d, r = CRESCENT_CUT_OFFSET, CRESCENT_CUT_RADIUS
    x = (1 + d * d - r * r) / (2 * d)
    y = math.sqrt(1 - x * x)
    outer, inner = math.atan2(y, x), math.atan2(y, x - d)
    return [(np.concatenate([_arc(1, outer, 2 * math.pi - outer), _arc(r, 2 * math.pi - inner, inner, centre=(d, 0))]), True)]


def _arrow() -> list[Part]:
    return _polygon((-1, -0.22), (0.2, -0.22), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.22), (-1, 0.22))


def _heart() -> list[Part]:
    t = np.linspace(0, 2 * math.pi, ROUND_VERTICES, endpoint=False)
    x = 16 * np.sin(t) ** 3  # the classic heart curve, 32 units wide
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [(np.stack([x, y], axis=1) / 16, True)]


def _tee() -> list[Part]:
    return _polygon((-1, -1), (1, -1), (1, -0.45), (0.28, -0.45), (0.28, 1), (-0.28, 1), (-0.28, -0.45), (-1, -0.45))


def _hourglass() -> list[Part]:
    w = HOURGLASS_HALF_WAIST
    return _polygon((-1, -1), (1, -1), (w, 0), (1, 1), (-1, 1), (-w, 0))


# Ordered so that a smaller num_classes keeps the most distinct shapes.
SHAPES: dict[str, Callable[[], list[Part]]] = {
    "circle": _circle, "square": _square, "triangle": _triangle, "star": _star, "cross": _cross, "ring": _ring,
    "arrow": _arrow, "heart": _heart, "crescent": _crescent, "tee": _tee, "diamond": _diamond, "hourglass": _hourglass,
}
CLASS_NAMES: list[str] = list(SHAPES)

# --- Image recipe -----------------------------------------------------------------------------------------------
P_IN_SCENE = 0.8  # an object's class comes from the image's scene, otherwise from all classes
ASPECT_JITTER = (0.8, 1.25)  # mild: a square stays a square-ish rectangle, a circle never becomes the diamond
MAX_OBJECT_IOU, PLACEMENT_TRIES = 0.25, 10  # objects may overlap a little, not hide each other
PALETTE_SIZE = 3  # colours per image, shared by objects, distractors and lines
MIN_CONTRAST, COLOUR_TRIES = 80.0, 20  # Euclidean RGB distance a palette colour keeps from the background
BACKGROUND_BLOTCH_GRID, BACKGROUND_BLOTCH_STD = 6, 18.0  # low-frequency noise: a coarse grid resized up
BACKGROUND_NOISE_STD = (4.0, 14.0)  # per-pixel noise, drawn per image
UNIFORM_BYTE_MEAN, UNIFORM_BYTE_STD = 127.5, 256 / math.sqrt(12)  # of a byte drawn uniformly from 0..255
TEXTURE_PERIOD = (3.0, 7.0)  # stripes and dots, in pixels
DOT_RADIUS_FRACTION = 0.3  # of the dot period
TEXTURE_NOISE_STD = 28.0
TEXTURES = ("flat", "stripes", "dots", "noise")
BLOB_VERTICES, BLOB_HARMONICS, BLOB_AMPLITUDE = 40, (2, 3, 4, 5), (0.08, 0.25)  # star-convex distractor outline
LINE_THICKNESS = (1, 2)
LINE_OVERSHOOT = 0.1  # line endpoints may lie this fraction of the side outside the image
SUBPIXEL_BITS = 4  # cv2 fixed-point vertices: polygons keep their exact size at 20 px
MARGIN = 1  # pixels around a shape's patch so antialiased edges are not cut
ALPHA_INSIDE = 128  # a pixel belongs to an object when it is at least half covered
MIN_OBJECT_PX = 4  # tiny images still get drawable objects
SEGMENTATION_DECIMALS = 2

# --- Ids and streams --------------------------------------------------------------------------------------------
IMAGE_ID_STRIDE = 1_000_000  # split s (in the order given) owns ids s*stride+1 ..; ids stay fixed as sizes change
ANN_ID_STRIDE = 100  # annotation id = image id * stride + index: unique across splits without counting
CATEGORY_SUPERCATEGORY = "shape"


def scenes(num_classes: int, num_scenes: int) -> list[list[int]]:
    """Class indices favoured by each scene: classes dealt round-robin, so scene s holds s, s+S, s+2S, ..."""
    return [list(range(s, num_classes, num_scenes)) for s in range(num_scenes)]


def _check(cfg: dict, splits: dict[str, int]) -> None:
    problems = []
    if cfg["num_classes"] > len(CLASS_NAMES):
        problems.append(f"dataset.builtin.num_classes: at most {len(CLASS_NAMES)} shape classes exist, got {cfg['num_classes']}")
    if cfg["num_scenes"] > cfg["num_classes"]:
        problems.append(f"dataset.builtin.num_scenes: at most num_classes ({cfg['num_classes']}), got {cfg['num_scenes']}")
    if cfg["objects_per_image"][1] >= ANN_ID_STRIDE:
        problems.append(f"dataset.builtin.objects_per_image: at most {ANN_ID_STRIDE - 1} objects per image")
    problems += [f"dataset.builtin: split {name!r} is limited to {IMAGE_ID_STRIDE - 1} images"
                 for name, n in splits.items() if n >= IMAGE_ID_STRIDE]
    if problems:
        raise UserError("\n".join(problems))


def _uniform(rng: np.random.Generator, bounds: list[float] | tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _count(rng: np.random.Generator, bounds: list[int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy two-colour gradient in a random direction; returns the image and the colours palettes must avoid.

    Gradient and blotches are laid out on a coarse grid and resized up in uint8 (cubic interpolation reproduces
    a linear ramp), which is several times faster than building them at full size in floats.
    """
    ends = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    grid = (np.arange(BACKGROUND_BLOTCH_GRID) + 0.5) / BACKGROUND_BLOTCH_GRID
    ramp = math.cos(angle) * grid[None, :] + math.sin(angle) * grid[:, None]
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    coarse = ends[0] + ramp[..., None] * (ends[1] - ends[0])
    coarse += rng.normal(0, BACKGROUND_BLOTCH_STD, size=coarse.shape)
    image = cv2.resize(np.clip(coarse, 0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    # Zero-mean uniform pixel noise with the drawn standard deviation, added with saturation.
    gain = _uniform(rng, BACKGROUND_NOISE_STD) / UNIFORM_BYTE_STD
    noise = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    image = cv2.addWeighted(image, 1.0, noise, gain, -gain * UNIFORM_BYTE_MEAN)
    return image, np.stack([ends[0], ends.mean(axis=0), ends[1]])


def _palette(rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
    """PALETTE_SIZE random colours that stand out from the background (the last draw if none is found)."""
    colours = []
    for _ in range(PALETTE_SIZE):
        for _ in range(COLOUR_TRIES):
            colour = rng.uniform(0, 255, size=3)
            if np.linalg.norm(avoid - colour, axis=1).min() >= MIN_CONTRAST:
                break
        colours.append(colour)
    return np.array(colours)


def _texture(rng: np.random.Generator, shape: tuple[int, int], palette: np.ndarray) -> np.ndarray:
    """An (h, w, 3) float fill: a palette colour, flat or with stripes, dots or noise (same kinds on every class)."""
    first, second = rng.choice(len(palette), size=2, replace=False)
    base = np.broadcast_to(palette[first], (*shape, 3)).astype(np.float32)
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    if kind == "flat":
        return base
    if kind == "noise":
        return base + rng.normal(0, TEXTURE_NOISE_STD, size=(*shape, 3)).astype(np.float32)
    period = _uniform(rng, TEXTURE_PERIOD)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    if kind == "stripes":
        angle = rng.uniform(0, math.pi)
        on = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period) > 0
    else:  # dots on a square grid
        dx, dy = (xx % period) - period / 2, (yy % period) - period / 2
        on = dx * dx + dy * dy < (DOT_RADIUS_FRACTION * period) ** 2
    return np.where(on[..., None], palette[second].astype(np.float32), base)


def _blob(rng: np.random.Generator) -> list[Part]:
    """A distractor outline: a circle bent by a few random low harmonics, so it matches no class."""
    t = np.linspace(0, 2 * math.pi, BLOB_VERTICES, endpoint=False)
    radius = np.ones_like(t)
    for k in BLOB_HARMONICS:
        radius += _uniform(rng, BLOB_AMPLITUDE) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    return [(np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1), True)]


def _pose(parts: list[Part], rng: np.random.Generator, side: float) -> tuple[list[Part], np.ndarray]:
    """Squash, rotate and scale ``parts`` so their filled extent's longer side is ``side`` px, at the origin."""
    aspect = _uniform(rng, ASPECT_JITTER)
    angle = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(angle), math.sin(angle)
    transform = np.array([[1, 0], [0, aspect]]) @ np.array([[c, s], [-s, c]])  # row vectors: squash, then rotate
    moved = [(points @ transform, fill) for points, fill in parts]
    filled = np.concatenate([points for points, fill in moved if fill])
    low, extent = filled.min(axis=0), np.ptp(filled, axis=0)
    scale = side / extent.max()
    return [((points - low) * scale, fill) for points, fill in moved], extent * scale


def _rasterise(parts: list[Part], extent: np.ndarray) -> np.ndarray:
    """An antialiased uint8 coverage patch for posed ``parts``, MARGIN px wider on every side."""
    w, h = (np.ceil(extent).astype(int) + 2 * MARGIN).tolist()
    alpha = np.zeros((h, w), dtype=np.uint8)
    for points, fill in parts:
        fixed = np.round((points + MARGIN) * (1 << SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(alpha, [fixed], 255 if fill else 0, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return alpha


def _paint(image: np.ndarray, alpha: np.ndarray, fill: np.ndarray, x: int, y: int) -> None:
    h, w = alpha.shape
    region = image[y : y + h, x : x + w].astype(np.float32)
    a = alpha[..., None].astype(np.float32) / 255
    image[y : y + h, x : x + w] = np.clip(region * (1 - a) + fill * a, 0, 255).astype(np.uint8)


def _side(rng: np.random.Generator, cfg: dict) -> float:
    """An object's longer side in pixels, kept drawable and inside the image."""
    size = cfg["image_size"]
    return min(max(_uniform(rng, cfg["object_scale"]) * size, MIN_OBJECT_PX), size - 2 * MARGIN - 1)  # -1: ceil slack


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two [x0, y0, x1, y1] boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _place(rng: np.random.Generator, patch: tuple[int, int], size: int, taken: list[np.ndarray]) -> tuple[int, int]:
    """A top-left corner keeping the patch inside the image and, if it can, off the objects already placed."""
    h, w = patch
    for _ in range(PLACEMENT_TRIES):
        x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        box = np.array([x, y, x + w, y + h], dtype=np.float64)
        if all(_iou(box, other) <= MAX_OBJECT_IOU for other in taken):
            break
    return x, y


def _object_class(rng: np.random.Generator, scene: list[int], num_classes: int) -> int:
    if rng.random() < P_IN_SCENE:
        return scene[rng.integers(len(scene))]
    return int(rng.integers(num_classes))


def _render(rng: np.random.Generator, cfg: dict) -> tuple[np.ndarray, list[dict]]:
    """One image and its objects (class index, tight box [x, y, w, h], area, outline polygons)."""
    size, num_classes = cfg["image_size"], cfg["num_classes"]
    image, avoid = _background(rng, size)
    palette = _palette(rng, avoid)
    scene = scenes(num_classes, cfg["num_scenes"])[rng.integers(cfg["num_scenes"])]

    # Distractors first, so they never hide an object; objects after, possibly overlapping each other a little.
    shapes = [(None, _blob(rng)) for _ in range(_count(rng, cfg["distractors_per_image"]))]
    for _ in range(_count(rng, cfg["objects_per_image"])):
        label = _object_class(rng, scene, num_classes)
        shapes.append((label, SHAPES[CLASS_NAMES[label]]()))

    objects, taken = [], []
    for label, parts in shapes:
        posed, extent = _pose(parts, rng, _side(rng, cfg))
        alpha = _rasterise(posed, extent)
        x, y = _place(rng, alpha.shape, size, taken if label is not None else [])
        _paint(image, alpha, _texture(rng, alpha.shape, palette), x, y)
        if label is None:
            continue
        inside = alpha >= ALPHA_INSIDE
        rows, cols = np.nonzero(inside if inside.any() else alpha > 0)  # a hairline shape has no half-covered pixel
        x0, y0 = x + int(cols.min()), y + int(rows.min())
        x1, y1 = x + int(cols.max()) + 1, y + int(rows.max()) + 1
        taken.append(np.array([x0, y0, x1, y1], dtype=np.float64))
        outlines = [np.round(points + MARGIN + (x, y), SEGMENTATION_DECIMALS).ravel().tolist() for points, fill in posed if fill]
        objects.append({"label": label, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                        "area": float(len(rows)), "segmentation": outlines})

    for _ in range(_count(rng, cfg["lines_per_image"])):
        ends = rng.uniform(-LINE_OVERSHOOT * size, (1 + LINE_OVERSHOOT) * size, size=4).round().astype(int).tolist()
        colour = palette[rng.integers(PALETTE_SIZE)].tolist()
        thickness = int(rng.integers(LINE_THICKNESS[0], LINE_THICKNESS[1] + 1))
        cv2.line(image, tuple(ends[:2]), tuple(ends[2:]), colour, thickness, lineType=cv2.LINE_AA)
    return image, objects


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(split.encode()), index]))


def synthesize(out_dir: Path, cfg: dict, splits: dict[str, int]) -> dict[str, Path]:
    """Write ``splits`` ({name: number of images}) of the built-in dataset under ``out_dir``.

    Images go to ``out_dir/images/<split>/<image_id:06d>.jpg``, annotations to
    ``out_dir/annotations/instances_<split>.json`` (COCO instances format); returns the annotation path per split.
    ``cfg`` is the ``dataset.builtin`` section of params.yaml.
    """
    _check(cfg, splits)
    out_dir = Path(out_dir)
    names = CLASS_NAMES[: cfg["num_classes"]]
    categories = [{"id": k + 1, "name": name, "supercategory": CATEGORY_SUPERCATEGORY} for k, name in enumerate(names)]
    encode = [cv2.IMWRITE_JPEG_QUALITY, int(cfg["jpeg_quality"])]
    written = {}
    for rank, (split, count) in enumerate(splits.items()):
        image_dir = out_dir / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            image_id = rank * IMAGE_ID_STRIDE + index + 1
            file_name = f"{image_id:06d}.jpg"
            pixels, objects = _render(_image_rng(cfg["seed"], split, index), cfg)
            (image_dir / file_name).write_bytes(cv2.imencode(".jpg", pixels, encode)[1].tobytes())
            images.append({"id": image_id, "file_name": file_name, "width": cfg["image_size"],
                           "height": cfg["image_size"], "license": 1})
            annotations += [{"id": image_id * ANN_ID_STRIDE + k, "image_id": image_id, "category_id": obj["label"] + 1,
                             "bbox": obj["bbox"], "area": obj["area"], "iscrowd": 0, "segmentation": obj["segmentation"]}
                            for k, obj in enumerate(objects)]
        info = {"description": "wsdkd built-in synthetic shapes (METHOD.md section 9)", "version": "1.0",
                "contributor": "wsdkd", "split": split, "config": cfg,
                "scenes": [[names[k] for k in members] for members in scenes(len(names), cfg["num_scenes"])]}
        document = {"info": info, "licenses": [{"id": 1, "name": "generated by wsdkd", "url": ""}],
                    "images": images, "annotations": annotations, "categories": categories}
        path = out_dir / "annotations" / f"instances_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(document, separators=(",", ":")) + "\n")
        written[split] = path
    return written
