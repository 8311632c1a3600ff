"""NUS-WIDE's official lists -> the manifest, on a handful of tiny images written in the official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsdkd.data.manifest import read_split
from wsdkd.data.nuswide import load_nuswide
from wsdkd.data.prepare import prepare_dataset
from wsdkd.data.preview import render_samples
from wsdkd.pipeline.errors import UserError

CONCEPTS = ["sky", "water", "person"]  # not alphabetical: the class order is the file's
# name in the lists -> (labels, on disk); Imagelist.txt's order below gives the ids.
TRAIN = {
    "a\\0001_11.jpg": ([1, 0, 0], True),
    "a\\0002_12.jpg": ([0, 0, 0], True),   # no label: dropped
    "b\\0003_13.jpg": ([0, 1, 1], True),
    "b\\0004_14.jpg": ([1, 0, 0], False),  # not on disk: dropped
    "b\\0005_15.jpg": ([1, 0, 0], True),
}
TEST = {
    "a\\0006_16.jpg": ([0, 0, 1], True),
    "c\\0007_17.jpg": ([1, 1, 0], True),
}
ALL = ["a\\0006_16.jpg", "a\\0001_11.jpg", "a\\0002_12.jpg", "c\\0007_17.jpg", "b\\0003_13.jpg", "b\\0004_14.jpg",
       "b\\0005_15.jpg"]


def _write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode())  # the official files use CRLF


def _official(root: Path) -> dict:
    _write_lines(root / "ConceptsList/Concepts81.txt", CONCEPTS)
    _write_lines(root / "ImageList/Imagelist.txt", [f"C:\\ImageData\\Flickr\\{name}" for name in ALL])
    for part, images in (("Train", TRAIN), ("Test", TEST)):
        _write_lines(root / f"ImageList/{part}Imagelist.txt", images)
        for k, concept in enumerate(CONCEPTS):
            _write_lines(root / f"Groundtruth/TrainTestLabels/Labels_{concept}_{part}.txt",
                         [labels[k] for labels, _ in images.values()])
        for number, (name, (_, on_disk)) in enumerate(images.items()):
            if on_disk:
                path = root / "Flickr" / name.replace("\\", "/")
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((8 + number, 12, 3), 40 * number, np.uint8)).save(path)
    return {"root": str(root), "images": "Flickr", "train_list": None, "test_list": None}


@pytest.fixture
def nuswide(tmp_path) -> dict:
    return _official(tmp_path / "nuswide")


def test_official_split_labels_ids_and_dropped_images(nuswide, caplog):
    with caplog.at_level("INFO"):
        splits = load_nuswide(nuswide)
    train, test = splits["train"], splits["test"]
    assert train.class_names == CONCEPTS and train.category_ids == [1, 2, 3]
    assert train.image_ids.tolist() == [2, 5, 7]  # line numbers in Imagelist.txt
    np.testing.assert_array_equal(train.labels, [[1, 0, 0], [0, 1, 1], [1, 0, 0]])
    assert [p.relative_to(Path(nuswide["root"])).as_posix() for p in train.paths] == [
        "Flickr/a/0001_11.jpg", "Flickr/b/0003_13.jpg", "Flickr/b/0005_15.jpg"]
    assert train.widths.tolist() == [12, 12, 12] and train.heights.tolist() == [8, 10, 12]
    assert test.image_ids.tolist() == [1, 4]
    np.testing.assert_array_equal(test.labels, [[0, 0, 1], [1, 1, 0]])
    assert train.annotations is None, "NUS-WIDE has no boxes"
    assert "TrainImagelist.txt: dropped 1 of 5 images with no label" in caplog.text
    assert "dropped 1 of 4 labelled images missing or unreadable" in caplog.text and "b/0004_14.jpg" in caplog.text


def test_prepare_dataset_writes_the_same_manifest_as_coco(tmp_path, nuswide, default_params):
    cfg = {**default_params["dataset"], "source": "nuswide", "val_fraction": 0.3, "nuswide": nuswide}
    assert prepare_dataset(cfg, tmp_path / "dataset") == {"train": 2, "val": 1, "test": 2}
    splits = {name: read_split(tmp_path / "dataset", name) for name in ("train", "val", "test")}
    assert sorted(splits["train"].image_ids.tolist() + splits["val"].image_ids.tolist()) == [2, 5, 7]
    assert splits["test"].class_names == CONCEPTS and splits["test"].annotations is None
    assert all(p.is_file() for split in splits.values() for p in split.paths)
    np.testing.assert_array_equal(splits["test"].labels, [[0, 0, 1], [1, 1, 0]])
    render_samples(splits["train"], tmp_path / "samples.png")  # without boxes: captioned with the labels
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_a_user_split_picks_from_both_official_lists(nuswide):
    root = Path(nuswide["root"])
    _write_lines(root / "my_train.txt", ["c/0007_17.jpg", "C:\\ImageData\\Flickr\\a\\0001_11.jpg", "a\\0002_12.jpg"])
    _write_lines(root / "my_test.txt", ["b\\0003_13.jpg"])
    splits = load_nuswide({**nuswide, "train_list": "my_train.txt", "test_list": str(root / "my_test.txt")})
    assert splits["train"].image_ids.tolist() == [4, 2]  # 0002 has no label
    np.testing.assert_array_equal(splits["train"].labels, [[1, 1, 0], [1, 0, 0]])
    assert splits["test"].image_ids.tolist() == [5]


def _drop_last_line(path: Path) -> None:
    _write_lines(path, path.read_text().splitlines()[:-1])


@pytest.mark.parametrize("damage, cfg_change, message", [
    (lambda r: _drop_last_line(r / "Groundtruth/TrainTestLabels/Labels_water_Train.txt"), {},
     r"Labels_water_Train.txt: 4 labels, but TrainImagelist.txt lists 5 images"),
    (lambda r: _write_lines(r / "Groundtruth/TrainTestLabels/Labels_cloud_Test.txt", [0, 0]), {},
     r"Labels_cloud_Test.txt: concept 'cloud' is not in ConceptsList/Concepts81.txt"),
    (lambda r: (r / "Groundtruth/TrainTestLabels/Labels_sky_Test.txt").unlink(), {},
     r"Labels_sky_Test.txt: label file not found"),
    (lambda r: _write_lines(r / "Groundtruth/TrainTestLabels/Labels_person_Test.txt", [1, 2]), {},
     r"Labels_person_Test.txt: value 2 is '2', expected 0 or 1"),
    (lambda r: _drop_last_line(r / "ImageList/Imagelist.txt"), {},
     r"TrainImagelist.txt: line 5: image 'b/0005_15.jpg' is not in ImageList/Imagelist.txt"),
    (lambda r: _write_lines(r / "split.txt", ["a\\0001_11.jpg", "", "z\\9.jpg"]), {"train_list": "split.txt"},  # blank line counted
     r"split.txt: line 3: image 'z/9.jpg' is not in the official train and test lists"),
    (lambda r: _write_lines(r / "ImageList/TestImagelist.txt", ["a\\0006_16.jpg", "a\\0006_16.jpg"]), {},
     r"TestImagelist.txt: line 2: image 'a/0006_16.jpg' is listed twice \(first on line 1\)"),
    (lambda r: (r / "ConceptsList/Concepts81.txt").unlink(), {}, r"Concepts81.txt: file not found"),
    (lambda r: _write_lines(r / "split.txt", ["a\\0001_11.jpg", "a\\0006_16.jpg"]), {"train_list": "split.txt"},
     r"TestImagelist.txt: 1 images are also in .*split.txt: a/0006_16.jpg"),
    (lambda r: None, {"train_list": "absent.txt"}, r"absent.txt: file not found"),
    (lambda r: None, {"images": "elsewhere"}, r"TrainImagelist.txt: no usable image \(1 without a label, 4 missing"),
])
def test_malformed_lists_are_one_line_naming_the_file(nuswide, damage, cfg_change, message):
    damage(Path(nuswide["root"]))
    with pytest.raises(UserError, match=message) as error:
        load_nuswide({**nuswide, **cfg_change})
    assert "\n" not in str(error.value) and str(error.value).startswith(nuswide["root"])
