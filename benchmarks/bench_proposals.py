"""Benchmark of the proposals stage (issue 3).

(a) per-image time of the stage's EdgeBoxes path against the bare cv2 call, on the same precomputed edge maps
    (and end to end: reading, edges, boxes, storage) -- target: within 1.15x of bare;
(b) extraction throughput with 1 and 2 worker processes -- target: at least 1.8x on 2 cores;
(c) seconds per image on real photos and on synthetic images, and the projected core-hours for COCO 2014.

    python benchmarks/bench_proposals.py [--images DIR] [--synthetic 200] [--edges canny_sobel]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2

from wsdkd.proposals.boxes import fit_proposals
from wsdkd.proposals.edgeboxes import EdgeBoxes
from wsdkd.proposals.edges import make_edge_detector
from wsdkd.proposals.extract import extract_proposals, read_bgr

COCO_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-mini" / "train2017"
COCO2014_IMAGES = 122_218
EDGEBOXES = {"alpha": 0.55, "beta": 0.45, "min_score": 0.01, "min_box_area": 100, "max_boxes": 1000}


def config(edges: str) -> dict:
    return {"source": "edgeboxes", "num_proposals": 500, "edges": edges, "structured_model": None,
            "edgeboxes": dict(EDGEBOXES), "external_json": None, "shard_size": 8, "skip_bad_images": False,
            "max_side": None}


def synthetic_images(folder: Path, count: int) -> list[Path]:
    import yaml
    from wsdkd.data.synthetic import synthesize

    builtin = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["dataset"]["builtin"]
    synthesize(folder, builtin, {"bench": count})
    return sorted((folder / "images" / "bench").glob("*.jpg"))


def bench_overhead(paths: list[Path], edges: str) -> None:
    """(a): the same edge maps through the bare cv2 call and through the stage's path, interleaved."""
    cv2.setNumThreads(1)
    detector = make_edge_detector(edges)
    stage = EdgeBoxes(detector, **EDGEBOXES)
    bare = cv2.ximgproc.createEdgeBoxes(alpha=EDGEBOXES["alpha"], beta=EDGEBOXES["beta"], minScore=EDGEBOXES["min_score"],
                                        maxBoxes=EDGEBOXES["max_boxes"], minBoxArea=EDGEBOXES["min_box_area"])
    bare_s = stage_s = 0.0
    for path in paths:
        image = read_bgr(path)
        magnitude, orientation = detector(image)
        start = time.perf_counter()
        bare.getBoundingBoxes(magnitude, orientation)
        middle = time.perf_counter()
        boxes, scores = stage.boxes_from_edges(magnitude, orientation)
        fit_proposals(boxes, scores, image.shape[1], image.shape[0], 500)
        stage_s += time.perf_counter() - middle
        bare_s += middle - start
    n = len(paths)
    print(f"(a) EdgeBoxes on precomputed {edges} edges, {n} images: bare cv2 {1000 * bare_s / n:.1f} ms/img, "
          f"stage path (+ xyxy, top-n, recycle) {1000 * stage_s / n:.1f} ms/img, ratio {stage_s / bare_s:.3f} "
          f"(target <= 1.15)")

    start = time.perf_counter()
    for path in paths:
        bare.getBoundingBoxes(*detector(cv2.imread(str(path))))
    bare_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        extract_proposals([0] * n, paths, {**config(edges), "shard_size": n}, Path(tmp) / "p.h5", Path(tmp) / "r",
                          workers=1, progress=False)
        stage_s = time.perf_counter() - start
    print(f"    end to end (read, edges, boxes; stage also stores HDF5): bare {1000 * bare_s / n:.1f} ms/img, "
          f"stage {1000 * stage_s / n:.1f} ms/img, ratio {stage_s / bare_s:.3f}")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers once it has closed)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def throughput(paths: list[Path], edges: str, workers: int) -> tuple[float, float]:
    """Images per second of a fresh extraction (process start-up included), and CPU seconds per image."""
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), cpu_seconds()
        extract_proposals(list(range(len(paths))), paths, config(edges), Path(tmp) / "p.h5", Path(tmp) / "r",
                          workers=workers, progress=False)
        return len(paths) / (time.perf_counter() - start), (cpu_seconds() - cpu) / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=COCO_MINI, help="folder of real photos (*.jpg)")
    parser.add_argument("--synthetic", type=int, default=200, help="built-in synthetic images to time (0: none)")
    parser.add_argument("--edges", default="canny_sobel", choices=["canny_sobel", "sobel_lab"])
    parser.add_argument("--overhead-images", type=int, default=30)
    args = parser.parse_args()
    photos = sorted(args.images.glob("*.jpg"))
    if not photos:
        parser.error(f"{args.images}: no *.jpg images")
    print(f"{len(photos)} photos from {args.images}; {args.edges} edges; EdgeBoxes {EDGEBOXES}; 500 proposals")
    bench_overhead(photos[:args.overhead_images], args.edges)

    load = os.getloadavg()[0]
    (one, cpu_one), (two, cpu_two) = throughput(photos, args.edges, 1), throughput(photos, args.edges, 2)
    print(f"(b) throughput on {len(photos)} photos: 1 worker {one:.2f} img/s, 2 workers {two:.2f} img/s, "
          f"speed-up {two / one:.2f}x (target >= 1.8) on {os.cpu_count()} cores, load average {load:.1f} before; "
          f"CPU s/img {cpu_one:.3f} vs {cpu_two:.3f} (equal = no parallel overhead)")

    rows = [("photos", len(photos), cpu_one)]
    if args.synthetic:
        with tempfile.TemporaryDirectory() as tmp:
            synthetic = synthetic_images(Path(tmp), args.synthetic)
            rows.append(("synthetic", len(synthetic), throughput(synthetic, args.edges, 1)[1]))
    for name, count, seconds in rows:
        print(f"(c) {name}: {seconds:.3f} CPU s/img ({count} images); COCO 2014 ({COCO2014_IMAGES:,} images) "
              f"at this rate: {COCO2014_IMAGES * seconds / 3600:.1f} core-hours")


if __name__ == "__main__":
    main()
