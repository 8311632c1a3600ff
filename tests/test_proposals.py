"""Region proposals: box math, sources, the HDF5 store, sharded resumable extraction, recall, bad inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wsdkd.data.manifest import Split, write_manifest
from wsdkd.pipeline.errors import UserError
from wsdkd.proposals import ProposalReader
from wsdkd.proposals.boxes import (best_overlap_curve, box_iou, clip_to_image, fit_proposals, recycle_to, top_n,
                                   xywh_to_xyxy)
from wsdkd.proposals.edgeboxes import EdgeBoxes
from wsdkd.proposals.edges import canny_sobel_edges, make_edge_detector, sobel_lab_edges, thin_edges
from wsdkd.proposals.extract import extract_proposals, extract_shards, read_bgr
from wsdkd.proposals.recall import coverage_summary, curve_counts, plot_recall_curve, recall_report
from wsdkd.proposals.sources import ExternalDetections, SelectiveSearch, make_source, rank_prior
from wsdkd.proposals.store import merge_proposals, write_proposals

ROOT = Path(__file__).resolve().parents[1]
COCO_MINI = ROOT.parent / "shared" / "data" / "coco-mini"
needs_coco_mini = pytest.mark.skipif(not (COCO_MINI / "train2017").is_dir(),
                                     reason=f"{COCO_MINI} absent (shared test data is not part of a fresh clone)")

EB = {"alpha": 0.55, "beta": 0.45, "min_score": 0.01, "min_box_area": 50, "max_boxes": 200}


def cfg(**overrides) -> dict:
    base = {"source": "edgeboxes", "num_proposals": 20, "edges": "canny_sobel", "structured_model": None,
            "edgeboxes": dict(EB), "external_json": None, "shard_size": 2, "skip_bad_images": False,
            "max_side": None}
    return {**base, **overrides}


def scene(seed: int, size: int = 96) -> np.ndarray:
    """A noisy background with a few filled rectangles: something for edges to find."""
    rng = np.random.default_rng(seed)
    image = rng.integers(90, 130, (size, size, 3), dtype=np.uint8)
    for _ in range(3):
        x, y = rng.integers(0, size - 30, 2)
        w, h = rng.integers(12, 30, 2)
        cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), rng.integers(0, 255, 3).tolist(), -1)
    return image


def write_scenes(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        paths.append(folder / f"{k:03d}.jpg")
        cv2.imwrite(str(paths[-1]), scene(k))
    return paths


# --- box math ---------------------------------------------------------------------------------------------------

def test_xywh_to_xyxy():
    np.testing.assert_array_equal(xywh_to_xyxy([[1, 2, 3, 4], [0, 0, 10, 5]]), [[1, 2, 4, 6], [0, 0, 10, 5]])
    assert xywh_to_xyxy(np.zeros((0, 4))).shape == (0, 4)


def test_recycle_fewer_than_n_repeats_from_the_top():
    boxes = np.arange(12, dtype=np.float32).reshape(3, 4)
    out, scores, real = recycle_to(boxes, np.array([3, 2, 1]), 7)
    assert real == 3 and out.shape == (7, 4)
    np.testing.assert_array_equal(out, boxes[[0, 1, 2, 0, 1, 2, 0]])
    np.testing.assert_array_equal(scores, [3, 2, 1, 3, 2, 1, 3])


def test_recycle_zero_exact_and_more():
    out, scores, real = recycle_to(np.zeros((0, 4)), np.zeros(0), 5)
    assert real == 0 and not out.any() and not scores.any() and out.shape == (5, 4)
    boxes = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    out, _, real = recycle_to(boxes, np.ones(5), 5)
    assert real == 5 and np.array_equal(out, boxes)
    out, _, real = recycle_to(boxes, np.ones(5), 2)
    assert real == 2 and np.array_equal(out, boxes[:2])


def test_top_n_orders_by_score_and_keeps_ties_stable():
    boxes = np.arange(20, dtype=np.float32).reshape(5, 4)
    out, scores = top_n(boxes, np.array([0.1, 0.9, 0.5, 0.9, 0.2]), 3)
    np.testing.assert_array_equal(scores, np.float32([0.9, 0.9, 0.5]))
    np.testing.assert_array_equal(out, boxes[[1, 3, 2]])


def test_clip_and_whole_image_fallback():
    boxes, scores = clip_to_image([[-5, -5, 5, 5], [20, 20, 30, 30], [3, 3, 3, 8]], [1, 2, 3], 10, 10)
    np.testing.assert_array_equal(boxes, [[0, 0, 5, 5]])  # the second is outside, the third has no width
    boxes, scores, real = fit_proposals(np.zeros((0, 4)), np.zeros(0), 7, 5, 3)
    assert real == 1
    np.testing.assert_array_equal(boxes, [[0, 0, 7, 5]] * 3)
    np.testing.assert_array_equal(scores, [1, 1, 1])


def test_box_iou_hand_computed():
    a = [[0, 0, 10, 10]]
    b = [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5], [0, 0, 0, 0]]
    np.testing.assert_allclose(box_iou(a, b), [[1, 50 / 150, 0, 25 / 100, 0]])


def test_best_overlap_curve_is_a_running_max():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    proposals = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(best_overlap_curve(proposals, gt), [[1 / 3, 0], [1 / 3, 1], [1, 1]])


# --- edges and sources ------------------------------------------------------------------------------------------

def test_thin_edges_keeps_the_ridge_only():
    magnitude = np.tile(np.float32([0.2, 0.6, 1.0, 0.6, 0.2]), (5, 1))  # a vertical edge: gradient along x
    thinned = thin_edges(magnitude, np.zeros_like(magnitude))
    assert thinned[:, 2].tolist() == [1.0] * 5 and not thinned[:, [0, 1, 3, 4]].any()


@pytest.mark.parametrize("detector", [sobel_lab_edges, canny_sobel_edges])
def test_builtin_edges_are_normalised_and_oriented(detector):
    magnitude, orientation = detector(scene(0))
    assert magnitude.shape == orientation.shape == (96, 96) and magnitude.dtype == np.float32
    assert magnitude.max() == pytest.approx(1.0) and magnitude.min() >= 0
    assert orientation.min() >= 0 and orientation.max() < np.pi
    flat = detector(np.full((20, 20, 3), 128, np.uint8))[0]
    assert not flat.any()


def test_structured_edges_need_an_existing_model(tmp_path):
    with pytest.raises(UserError, match="model.yml.gz: structured-edge model file not found"):
        make_edge_detector("structured", tmp_path / "model.yml.gz")
    with pytest.raises(UserError, match="structured_model is not set"):
        make_edge_detector("structured", None)
    (tmp_path / "bad.yml.gz").write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a structured-edge model"):
        make_edge_detector("structured", tmp_path / "bad.yml.gz")


def check_proposals(boxes: np.ndarray, scores: np.ndarray, width: int, height: int) -> None:
    assert len(boxes) > 0 and boxes.dtype == np.float32 and boxes.shape == (len(scores), 4)
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert boxes[:, 0].min() >= 0 and boxes[:, 1].min() >= 0
    assert boxes[:, 2].max() <= width + 1 and boxes[:, 3].max() <= height + 1


@pytest.mark.parametrize("edges", ["canny_sobel", "sobel_lab"])
def test_edgeboxes_on_a_scene_and_shrunk_for_speed(edges):
    image = cv2.resize(scene(1), (192, 144))
    for max_side in (None, 96):
        boxes, scores = make_source(cfg(edges=edges, max_side=max_side))(image, 1)
        check_proposals(boxes, scores, 192, 144)
        assert (np.diff(scores) <= 0).all()
    assert boxes[:, 2].max() > 96  # shrunk boxes are scaled back to the original pixels


@needs_coco_mini
@pytest.mark.parametrize("edges", ["canny_sobel", "sobel_lab"])
def test_edgeboxes_on_a_real_photo(edges):
    path = sorted((COCO_MINI / "train2017").glob("*.jpg"))[0]
    image = read_bgr(path)
    source = EdgeBoxes(make_edge_detector(edges), **{**EB, "max_boxes": 100}, max_side=320)
    boxes, scores = source(image, 0)
    check_proposals(boxes, scores, image.shape[1], image.shape[0])
    assert len(boxes) == 100


def test_selective_search_ranks_its_boxes():
    boxes, scores = SelectiveSearch(max_side=64)(scene(2), 0)
    check_proposals(boxes, scores, 96, 96)
    np.testing.assert_allclose(scores, rank_prior(len(boxes)))
    assert scores[0] == 1 and (np.diff(scores) < 0).all()
    np.testing.assert_allclose(rank_prior(4), [1, 0.75, 0.5, 0.25])


def test_external_detections_merge_per_image(tmp_path):
    records = [{"image_id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.2},
               {"image_id": 7, "category_id": 3, "bbox": [5, 5, 10, 20], "score": 0.9},
               {"image_id": 8, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 0.5},
               {"image_id": 7, "category_id": 1, "bbox": [2, 2, 4, 4], "score": 0.5}]
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(records))
    source = make_source(cfg(source="external", external_json=str(path)))
    boxes, scores = source(np.zeros((40, 40, 3), np.uint8), 7)
    np.testing.assert_array_equal(scores, np.float32([0.9, 0.5, 0.2]))
    np.testing.assert_array_equal(boxes, [[5, 5, 15, 25], [2, 2, 6, 6], [0, 0, 10, 10]])
    assert len(source(None, 99)[0]) == 0
    path.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 1]}]))
    with pytest.raises(UserError, match="entry 0"):
        ExternalDetections(path)
    with pytest.raises(UserError, match="not found"):
        ExternalDetections(tmp_path / "missing.json")
    with pytest.raises(UserError, match="external_json is not set"):
        make_source(cfg(source="external"))


# --- store ------------------------------------------------------------------------------------------------------

def test_reader_api(tmp_path):
    rng = np.random.default_rng(0)
    boxes, scores = rng.random((3, 5, 4)).astype(np.float32), rng.random((3, 5)).astype(np.float32)
    path = tmp_path / "p.h5"
    write_proposals(path, np.array([10, 30, 20]), boxes, scores, np.array([5, 2, 0]), {"source": "edgeboxes"})
    with ProposalReader(path) as reader:
        assert len(reader) == 3 and reader.num_proposals == 5 and reader.source == "edgeboxes"
        got_boxes, got_scores, real = reader.get(reader.index_of(30))
        assert real == 2 and np.array_equal(got_boxes, boxes[1]) and np.array_equal(got_scores, scores[1])
        assert reader._file["boxes"].chunks == (1, 5, 4)
        with pytest.raises(UserError, match="no proposals for image id 99"):
            reader.index_of(99)
    with pytest.raises(UserError, match="proposals file not found"):
        ProposalReader(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(UserError, match="junk.h5: not a whole HDF5 file"):
        ProposalReader(tmp_path / "junk.h5")


# --- recall -----------------------------------------------------------------------------------------------------

def test_recall_report_hand_computed(tmp_path, monkeypatch):
    # image 1: GT A [0,0,10,10] (small, cat 1) and B [0,0,100,100] (large, cat 2); image 2: C [0,0,40,40] (medium,
    # cat 1); image 3 is unreadable. Proposals of image 1: exactly A, then B's left half (IoU 0.5);
    # image 2: one box covering C's top 40x35 (IoU 0.875), recycled.
    annotations = {"images": [{"id": i} for i in (1, 2, 3)], "categories": [{"id": 1}, {"id": 2}], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 4, "image_id": 2, "category_id": 1, "bbox": [50, 50, 10, 10], "area": 100, "iscrowd": 1},
        {"id": 5, "image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}]}
    ann_path = tmp_path / "instances.json"
    ann_path.write_text(json.dumps(annotations))
    boxes = np.zeros((3, 4, 4), np.float32)
    boxes[0, :2] = [[0, 0, 10, 10], [0, 0, 50, 100]]
    boxes[0, 2:] = boxes[0, :2]
    boxes[1, :] = [0, 0, 40, 35]
    path = tmp_path / "p.h5"
    write_proposals(path, np.array([1, 2, 3]), boxes, np.ones((3, 4), np.float32), np.array([2, 1, 0]), {})
    monkeypatch.chdir(tmp_path)  # a stage runs in the project; the manifest hands it absolute annotation paths
    report = recall_report(path, ann_path.resolve())
    assert report["annotations"] == "instances.json"  # the same report in every checkout
    overall = report["overall"]
    assert overall["num_gt"] == 3 and report["excluded_unreadable_images"] == [3]
    assert overall["recall@0.5"] == pytest.approx(1.0) and overall["recall@0.7"] == pytest.approx(2 / 3)
    assert overall["abo"] == pytest.approx((1 + 0.5 + 0.875) / 3)
    assert overall["mabo"] == pytest.approx(((1 + 0.875) / 2 + 0.5) / 2)
    assert [report["by_size"][s]["num_gt"] for s in ("small", "medium", "large")] == [1, 1, 1]
    assert report["by_size"]["large"]["recall@0.7"] == 0
    curve = report["curve"]
    assert curve["num_proposals"] == curve_counts(4).tolist() and curve["num_proposals"][0] == 1
    # with one proposal per image: A found (IoU 1), B missed (0.01), C found (0.875)
    assert curve["recall@0.5"][0] == pytest.approx(2 / 3) and curve["recall@0.5"][-1] == pytest.approx(1)
    plot_recall_curve(report, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_recall_report_of_a_split_without_boxes_has_no_recall_but_exists(tmp_path):
    path = tmp_path / "p.h5"
    write_proposals(path, np.array([1, 2]), np.zeros((2, 3, 4), np.float32), np.ones((2, 3), np.float32),
                    np.array([3, 3]), {})
    report = recall_report(path, None)
    assert report["num_images"] == 2 and report["annotations"] is None
    assert report["overall"]["num_gt"] == 0 and report["overall"]["recall@0.5"] is None
    plot_recall_curve(report, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_coverage_summary_of_nothing():
    assert coverage_summary(np.zeros(0), np.zeros(0, np.int64))["recall@0.5"] is None


# --- sharded extraction -----------------------------------------------------------------------------------------

def read_all(path: Path) -> tuple[np.ndarray, ...]:
    with ProposalReader(path) as reader:
        return (reader.image_ids, *reader.all_rows(), reader.num_real)


def test_killed_run_resumes_only_missing_shards(tmp_path):
    paths = write_scenes(tmp_path / "images", 6)
    ids = list(range(100, 106))
    config = cfg()
    reference = tmp_path / "reference.h5"
    extract_proposals(ids, paths, config, reference, tmp_path / "fresh", workers=1, progress=False)

    folder = tmp_path / "resume"
    shards = extract_shards(ids, paths, config, folder, workers=1, progress=False)
    assert [s.name for s in shards] == ["shard_000000.h5", "shard_000001.h5", "shard_000002.h5"]
    before = {s.name: s.stat().st_mtime_ns for s in shards}
    for lost in (shards[0], shards[2]):  # as if the run had been killed before these shards finished
        lost.unlink()
    (folder / ".shard_000002.h5.tmp-deadbeef").write_bytes(b"half")  # a killed worker's partial write
    extract_shards(ids, paths, config, folder, workers=2, progress=False)  # two shards to do: a real pool
    after = {s.name: s.stat().st_mtime_ns for s in shards}
    assert after["shard_000001.h5"] == before["shard_000001.h5"]
    assert shards[0].is_file() and shards[2].is_file() and not list(folder.glob(".*tmp*"))
    merged = tmp_path / "merged.h5"
    merge_proposals(shards, merged, config["num_proposals"], {})
    for got, want in zip(read_all(merged), read_all(reference)):
        np.testing.assert_array_equal(got, want)
    ids_, boxes, scores, num_real = read_all(reference)
    assert ids_.tolist() == ids and boxes.shape == (6, 20, 4) and (num_real > 0).all()


# --- bad input --------------------------------------------------------------------------------------------------

def test_grayscale_and_cmyk_jpegs_read_as_bgr(tmp_path):
    Image.new("L", (40, 30), 100).save(tmp_path / "gray.jpg")
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # pure red in CMYK
    assert read_bgr(tmp_path / "gray.jpg").shape == (30, 40, 3)
    cmyk = read_bgr(tmp_path / "cmyk.jpg")
    assert cmyk.shape == (30, 40, 3)
    blue, green, red = cmyk[15, 20].astype(int)
    assert red > 200 and green < 60 and blue < 60


def bad_input_folder(tmp_path: Path) -> tuple[list[int], list[Path]]:
    paths = write_scenes(tmp_path / "images", 2)
    Image.fromarray(scene(5)[:, :, 0]).save(tmp_path / "images" / "gray.jpg")
    Image.fromarray(scene(6)).convert("CMYK").save(tmp_path / "images" / "cmyk.jpg")
    cv2.imwrite(str(tmp_path / "images" / "tiny.png"), scene(7)[:4, :5])
    (tmp_path / "images" / "empty.jpg").write_bytes(b"")
    (tmp_path / "images" / "garbage.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg" * 10)
    names = ["gray.jpg", "cmyk.jpg", "tiny.png", "empty.jpg", "garbage.jpg"]
    return list(range(1, 8)), paths + [tmp_path / "images" / n for n in names]


def test_bad_images_stop_the_run_and_leave_nothing(tmp_path):
    ids, paths = bad_input_folder(tmp_path)
    out = tmp_path / "out" / "p.h5"
    with pytest.raises(UserError, match=r"empty\.jpg: cannot read image .*skip_bad_images"):
        extract_proposals(ids, paths, cfg(shard_size=3), out, tmp_path / "resume", progress=False)
    assert not out.exists() and not list(out.parent.glob("*"))
    assert sorted(p.name for p in (tmp_path / "resume").iterdir()) == ["shard_000000.h5"]  # finished work kept


def test_bad_images_skipped_on_request(tmp_path):
    ids, paths = bad_input_folder(tmp_path)
    out = tmp_path / "p.h5"
    bad = extract_proposals(ids, paths, cfg(skip_bad_images=True), out, tmp_path / "resume", progress=False)
    assert [b["image_id"] for b in bad] == [6, 7] and "garbage.jpg" in bad[1]["error"]
    with ProposalReader(out) as reader:
        assert reader.bad_images == bad
        assert reader.num_real.tolist()[5:] == [0, 0] and (reader.num_real[:5] > 0).all()
        boxes, scores, real = reader.get(reader.index_of(6))
        assert real == 0 and not boxes.any() and not scores.any()
        tiny_boxes, _, tiny_real = reader.get(reader.index_of(5))
        assert tiny_real >= 1 and tiny_boxes[:, 2].max() <= 5 and tiny_boxes[:, 3].max() <= 4


# --- the stage --------------------------------------------------------------------------------------------------

def test_stage_writes_proposals_and_reports(tmp_path, monkeypatch, default_params):
    paths = write_scenes(tmp_path / "images", 3)
    annotations = {"images": [{"id": i} for i in (1, 2, 3)], "categories": [{"id": 1}], "annotations": [
        {"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0}
        for i in (1, 2, 3)]}
    (tmp_path / "instances.json").write_text(json.dumps(annotations))
    split = Split("test", np.array([1, 2, 3]), paths, np.full(3, 96), np.full(3, 96), np.zeros((3, 1), np.uint8),
                  ["thing"], [1], tmp_path / "instances.json")
    write_manifest(tmp_path / "dataset", {"test": split}, source="test")
    spec = importlib.util.spec_from_file_location("extract_proposals_stage", ROOT / "stages" / "extract_proposals.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    monkeypatch.setattr(stage, "load_params", lambda path: {"proposals": cfg(), "progress": default_params["progress"]})
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "checkpoints"))
    out, report = tmp_path / "p.h5", tmp_path / "reports" / "recall.json"
    stage.main(["--manifest", str(tmp_path / "dataset"), "--split", "test", "--out", str(out), "--quiet",
                "--report", str(report), "--metrics", str(tmp_path / "reports" / "metrics.json"),
                "--plot", str(tmp_path / "reports" / "recall.png"),
                "--bad-images", str(tmp_path / "reports" / "bad.json")])
    with ProposalReader(out) as reader:
        assert reader.image_ids.tolist() == [1, 2, 3] and reader.params == cfg()
    full = json.loads(report.read_text())
    assert full["overall"]["num_gt"] == 3
    assert json.loads((tmp_path / "reports" / "metrics.json").read_text()) == {
        key: full["overall"][key] for key in ("recall@0.5", "recall@0.7")}, "the compared numbers alone"
    assert json.loads((tmp_path / "reports" / "bad.json").read_text()) == []
    assert not (tmp_path / "checkpoints" / "proposals_test").exists()  # resume state dropped once complete
    with pytest.raises(SystemExit):
        stage.main(["--manifest", str(tmp_path / "nowhere"), "--split", "test", "--out", str(out)])
