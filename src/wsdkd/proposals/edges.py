"""Edge maps for EdgeBoxes: one interface, three detectors.

An edge detector maps a BGR uint8 image to ``(magnitude, orientation)``, both float32 of the image's size:
magnitude in [0, 1] (what EdgeBoxes' thresholds such as ``edgeMinMag = 0.1`` assume) and orientation in
[0, pi). ``structured`` is OpenCV's structured-forest model (Dollar & Zitnick), the detector EdgeBoxes was
designed for; it needs a ``model.yml.gz`` that cannot be downloaded here. The two built-in gradient detectors
need no model file (METHOD.md section 1 has their measured recall and speed):

- ``sobel_lab``: Sobel magnitude on the Lab image, thinned to one pixel across (non-maximum suppression along
  the gradient, as ``edgesNms`` does for the structured model); no threshold, so weak edges stay.
- ``canny_sobel``: colour-Sobel magnitude kept only on Canny edge pixels (thinned and hysteresis-thresholded);
  fewer edge pixels, so EdgeBoxes runs faster on it.

Thinning matters for speed: on unthinned Sobel edges of a 640 px COCO photo EdgeBoxes took 20 s, thinned 0.6 s.

For a colour image each pixel takes the gradient of the channel where it is strongest, so an edge between two
colours of equal brightness is not lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..pipeline.errors import UserError

EdgeDetector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
EDGE_KINDS = ("canny_sobel", "sobel_lab", "structured")

_SMOOTH_SIGMA = 1.0  # pre-blur: JPEG noise otherwise yields many weak edge pixels that slow EdgeBoxes down
# Canny hysteresis thresholds as fractions of the image's strongest gradient (scale-free, so no per-dataset tuning)
_CANNY_LOW, _CANNY_HIGH = 0.1, 0.2
_CANNY_RESOLUTION = 1000  # cv2.Canny takes int16 gradients: fractions are scaled to this many steps


def _strongest_channel_gradient(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel Sobel ``gx, gy`` of whichever channel has the largest gradient magnitude there."""
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    if gx.ndim == 2:
        return gx, gy
    strongest = (gx * gx + gy * gy).argmax(axis=2)[..., None]
    return np.take_along_axis(gx, strongest, 2)[..., 0], np.take_along_axis(gy, strongest, 2)[..., 0]


def _orientation(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    return np.mod(np.arctan2(gy, gx), np.pi).astype(np.float32)


def _normalised(magnitude: np.ndarray) -> np.ndarray:
    peak = float(magnitude.max()) if magnitude.size else 0.0
    return (magnitude / peak if peak > 0 else magnitude).astype(np.float32)


def thin_edges(magnitude: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """Keep each pixel whose magnitude is at least that of both neighbours across the edge; zero the rest.

    The gradient direction (``orientation``, radians in [0, pi), y pointing down) is quantised to the nearest
    of 0, 45, 90 and 135 degrees, the pixel neighbours available on the grid.
    """
    direction = np.round(orientation / (np.pi / 4)).astype(np.int8) % 4
    padded = np.pad(magnitude, 1)
    height, width = magnitude.shape
    keep = np.zeros(magnitude.shape, bool)
    for k, (dx, dy) in enumerate(((1, 0), (1, 1), (0, 1), (-1, 1))):
        ahead = padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
        behind = padded[1 - dy:1 - dy + height, 1 - dx:1 - dx + width]
        keep |= (direction == k) & (magnitude >= ahead) & (magnitude >= behind)
    return np.where(keep, magnitude, 0).astype(np.float32)


def sobel_lab_edges(image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thinned Sobel gradient magnitude of the smoothed Lab image (strongest channel per pixel), in [0, 1]."""
    lab = cv2.cvtColor(image_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    gx, gy = _strongest_channel_gradient(cv2.GaussianBlur(lab, (0, 0), _SMOOTH_SIGMA))
    orientation = _orientation(gx, gy)
    return thin_edges(_normalised(np.sqrt(gx * gx + gy * gy)), orientation), orientation


def canny_sobel_edges(image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour-Sobel magnitude in [0, 1], zero except on Canny edges computed from that same colour gradient."""
    smooth = cv2.GaussianBlur(image_bgr, (0, 0), _SMOOTH_SIGMA).astype(np.float32) / 255.0
    gx, gy = _strongest_channel_gradient(smooth)
    magnitude = np.sqrt(gx * gx + gy * gy)
    peak = float(magnitude.max())
    if peak == 0:  # a flat image has no edges (and Canny needs a non-zero gradient scale)
        return np.zeros_like(magnitude), np.zeros_like(magnitude)
    step = _CANNY_RESOLUTION / peak
    dx, dy = (np.round(g * step).astype(np.int16) for g in (gx, gy))
    mask = cv2.Canny(dx, dy, _CANNY_LOW * _CANNY_RESOLUTION, _CANNY_HIGH * _CANNY_RESOLUTION, L2gradient=True)
    return np.where(mask > 0, magnitude / peak, 0).astype(np.float32), _orientation(gx, gy)


class StructuredEdges:
    """OpenCV's structured-forest edge detector with its orientation map and edge thinning (edgesNms)."""

    def __init__(self, model_path: str | Path) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise UserError(f"{path}: structured-edge model file not found (set proposals.structured_model to a "
                            f"model.yml.gz, or choose proposals.edges: canny_sobel or sobel_lab)")
        try:
            self._model = cv2.ximgproc.createStructuredEdgeDetection(str(path))
        except cv2.error as exc:
            raise UserError(f"{path}: not a structured-edge model ({str(exc).strip().splitlines()[-1]})") from None

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        edges = self._model.detectEdges(rgb)
        orientation = self._model.computeOrientation(edges)
        return self._model.edgesNms(edges, orientation), orientation


def make_edge_detector(kind: str, structured_model: str | Path | None = None) -> EdgeDetector:
    """The edge detector named ``kind`` (one of EDGE_KINDS); ``structured`` needs ``structured_model``."""
    if kind == "structured":
        if structured_model is None:
            raise UserError("proposals.edges is 'structured' but proposals.structured_model is not set "
                            "(give the path of OpenCV's model.yml.gz)")
        return StructuredEdges(structured_model)
    if kind == "sobel_lab":
        return sobel_lab_edges
    if kind == "canny_sobel":
        return canny_sobel_edges
    raise UserError(f"proposals.edges: expected one of {', '.join(EDGE_KINDS)}, got {kind!r}")
