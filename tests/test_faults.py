"""Fault injection on the tiny configuration: kills, damaged files, numerical faults and concurrent runs.

Each test injects one fault, checks what the user sees (one line naming the file and the problem) and that no
finished work is lost; the summary line of the run counts the faults tried, by kind (conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from wsdkd.pipeline.errors import UserError
from wsdkd.pipeline.workspace_lock import WorkspaceLock

from .conftest import PROJECT, TINY_TEACHER

BAD_INPUT = pytest.mark.faults(kind="bad inputs")
KILL = pytest.mark.faults(kind="kills")
CORRUPTION = pytest.mark.faults(kind="corruptions")
NUMERICAL = pytest.mark.faults(kind="numerical faults")
CONCURRENCY = pytest.mark.faults(kind="concurrent runs")

TINY_STUDENT = {"backbone": {"name": "efficientnet_lite0", "weights": "random", "weights_path": None},
                "input_size": 32, "batch_size": 8, "device": "cpu", "amp": False}


@pytest.fixture
def params_file(default_params, tmp_path) -> Path:
    """params.yaml for the stage scripts: the defaults, with the tiny teacher and student (3 epochs each)."""
    params = {**default_params, "teacher": {**TINY_TEACHER, "freeze_backbone": False, "epochs": 3},
              "student": {**default_params["student"], **TINY_STUDENT, "epochs": 3}}
    params["distill"] = {"features": {**default_params["distill"]["features"], "epochs": 3},
                         "predictions": default_params["distill"]["predictions"]}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def checkpoints(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "checkpoints"
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(root))
    return root


def _stage_command(script: str, args: list[str]) -> list[str]:
    return [sys.executable, str(PROJECT / "stages" / script), *args]


def _run_in_process(script: str, args: list[str], monkeypatch) -> None:
    """Run a stage script here (no second interpreter to start), as `python stages/<script> args` would."""
    monkeypatch.setattr(sys, "argv", _stage_command(script, args)[1:])
    runpy.run_path(str(PROJECT / "stages" / script), run_name="__main__")


def _kill_when(command: list[str], ready, timeout: float = 300) -> None:
    """Start ``command``; SIGKILL it as soon as ``ready()`` holds (it must still be running then)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert process.poll() is None, f"the stage ended before it could be killed:\n{process.stderr.read()}"
            assert time.monotonic() < deadline, "the stage never reached the point to kill it at"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()


def _weights(model_file: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_file, map_location="cpu", weights_only=False)["state_dict"]


# ---- bad inputs ----

def _instances(tmp_path: Path, images: list[dict], annotations: list[dict]) -> Path:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}))
    for image in images:
        (tmp_path / image["file_name"]).write_bytes(b"")
    return path


def _ann(ann_id: int, image_id: int, category_id: int = 1, bbox: object = (1, 1, 4, 4)) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": list(bbox), "iscrowd": 0}


@BAD_INPUT
def test_every_problem_of_an_annotation_file_is_listed_at_once(tmp_path):
    from wsdkd.data.coco import load_coco_split

    image = {"file_name": "x.jpg", "width": 10, "height": 10}
    path = _instances(tmp_path, [{**image, "id": 1}, {**image, "id": 1}, {**image, "id": 2},
                                 {"id": 3, "file_name": "y.jpg"}],
                      [_ann(1, 1), _ann(1, 2), _ann(3, 2, category_id=7), _ann(4, 99), _ann(5, 2, bbox=(0, 0, -1, 2)),
                       _ann(6, 2, bbox=(50, 50, 2, 2)), _ann(7, 3), _ann(8, 1, category_id=9)])
    with pytest.raises(UserError) as info:
        load_coco_split("train", path, tmp_path)
    assert str(info.value).splitlines() == [f"{path}: {line}" for line in [
        "image id 1 appears 2 times: expected each image id once",
        "annotation id 1 appears 2 times: expected each annotation id once",
        "annotation 4 (image 99): expected an image_id listed in 'images'",
        "annotation 3 (image 2): category_id 7: expected one of the 2 ids in 'categories' (1, 2)",
        "annotation 8 (image 1): category_id 9: expected one of the 2 ids in 'categories' (1, 2)",
        "image 3: width None, height None: expected a width and height > 0 in pixels",
        "annotation 5 (image 2): bbox [0, 0, -1, 2]: expected [x, y, width, height] with width and height > 0",
        "annotation 6 (image 2): bbox [50, 50, 2, 2] in a 10x10 image: expected a box overlapping its image",
    ]]


@BAD_INPUT
def test_boxes_sticking_out_are_clipped_counted_and_read_clipped_downstream(tmp_path, caplog):
    from wsdkd.data.coco import load_coco_split

    path = _instances(tmp_path, [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 8}],
                      [_ann(1, 1, bbox=(8, -2, 5, 5)), _ann(2, 1, bbox=(1, 1, 2, 2)), _ann(3, 1, bbox=(-1, 0, 3, 9))])
    split = load_coco_split("train", path, tmp_path, clipped_copy=tmp_path / "clipped.json")
    assert f"{path}: 2 boxes stuck out of their image and were clipped to it" in caplog.text
    assert split.annotations == tmp_path / "clipped.json"
    boxes = [a["bbox"] for a in json.loads(split.annotations.read_text())["annotations"]]
    assert boxes == [[8, 0, 2, 3], [1, 1, 2, 2], [0, 0, 2, 8]]


@BAD_INPUT
def test_classes_without_a_positive_image_are_named(tiny_manifest, caplog):
    from wsdkd.data.manifest import read_split
    from wsdkd.data.prepare import warn_classes_without_positives

    split = read_split(tiny_manifest, "val")
    labels = np.ones_like(split.labels)
    labels[:, [0, 2]] = 0
    warn_classes_without_positives(dataclasses.replace(split, labels=labels))
    names = split.class_names
    assert f"val split: no image shows 2 of {len(names)} classes: {names[0]}, {names[2]}" in caplog.text


@BAD_INPUT
def test_a_student_made_for_other_classes_is_named_and_removed_so_stage_1_reruns(tiny_student, tiny_manifest,
                                                                               tiny_upstream, params_file, tmp_path):
    import shutil

    init = tmp_path / "student_features"
    init.mkdir()
    shutil.copy(tiny_student, init / "model.pt")
    result = subprocess.run(_stage_command("train_distilled.py", [
        "--params", str(params_file), "--manifest", str(tiny_manifest), "--cache", str(tiny_upstream / "cache"),
        "--teacher", str(tiny_upstream / "teacher"), "--init", str(init), "--out", str(tmp_path / "out"),
        "--live", str(tmp_path / "live")]), env={**os.environ, "PYTHONPATH": str(PROJECT / "src")},
        capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: {init / 'model.pt'}: made for 3 other classes (cat, dog, kite), expected the dataset's 12 classes; "
        f"removed {init}, so the next run remakes it (stage distill_features)")
    assert not init.exists() and not (tmp_path / "out").exists()


# ---- kills ----

TRAINING_STAGES = {
    # stage -> (script, its upstream flags, the model file it writes)
    "train_student": ("train_student.py", [], "model.pt"),
    "train_teacher": ("train_teacher.py", ["--proposals", "{proposals}"], "model.pt"),
    "distill_features": ("distill_features.py", ["--cache", "{upstream}/cache", "--teacher", "{upstream}/teacher"],
                         "model.pt"),
    "train_distilled": ("train_distilled.py", ["--cache", "{upstream}/cache", "--teacher", "{upstream}/teacher",
                                               "--init", "{upstream}/teacher_init"], "model.pt"),
}


@pytest.fixture(scope="session")
def stage1_student(tiny_upstream, tiny_manifest, default_params, tmp_path_factory) -> Path:
    """Stage 1's output as stage 2 reads it (``method: none``: the initial student, written in a second)."""
    from wsdkd.distill.training import train_features

    out = tiny_upstream / "teacher_init"
    if not out.exists():
        cfg = {**default_params["student"], **TINY_STUDENT}
        train_features(cfg, {**default_params["distill"]["features"], "method": "none"}, tiny_manifest,
                       tiny_upstream / "cache", tiny_upstream / "teacher", out, tmp_path_factory.mktemp("live"),
                       "init")
    return out


@KILL
@pytest.mark.parametrize("stage", list(TRAINING_STAGES))
def test_training_stage_killed_midway_resumes_to_the_same_result(stage, params_file, checkpoints, tiny_manifest,
                                                                 tiny_proposals, tiny_upstream, stage1_student,
                                                                 tmp_path, monkeypatch):
    script, upstream_flags, model_file = TRAINING_STAGES[stage]
    paths = {"proposals": tiny_proposals, "upstream": tiny_upstream}

    def args(name: str) -> list[str]:
        return ["--params", str(params_file), "--manifest", str(tiny_manifest),
                *[flag.format(**paths) for flag in upstream_flags],
                "--out", str(tmp_path / name / "out"), "--live", str(tmp_path / name / "live"), "--stage", stage]

    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(tmp_path / "straight_checkpoints"))
    _run_in_process(script, args("straight"), monkeypatch)
    monkeypatch.setenv("WSDKD_CHECKPOINTS", str(checkpoints))

    last = checkpoints / stage
    _kill_when(_stage_command(script, args("resumed")), lambda: any(last.glob("*/last.pt")))
    left = sorted(p.name for p in (tmp_path / "resumed").iterdir())
    assert all(name.startswith(".") and ".tmp-" in name for name in left), "a killed stage leaves only temporaries"
    (kept,) = last.glob("*/last.pt")
    assert torch.load(kept, weights_only=False)["epoch"] >= 1, "the finished epochs survive the kill"

    _run_in_process(script, args("resumed"), monkeypatch)
    straight, resumed = (_weights(tmp_path / name / "out" / model_file) for name in ("straight", "resumed"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-5, atol=1e-6, msg=key)
    assert (tmp_path / "resumed" / "live" / "metrics.json").is_file()
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == ["live", "out"], "the next run cleans up"
    assert not last.exists(), "the resume state goes once the outputs are whole"


@KILL
def test_cache_killed_midway_keeps_the_finished_splits(tiny_upstream, tiny_manifest, tiny_proposals, params_file,
                                                       checkpoints, tmp_path, monkeypatch):
    from wsdkd.teacher.cache import TeacherCache

    def args(out: str) -> list[str]:
        return ["--params", str(params_file), "--manifest", str(tiny_manifest), "--proposals", str(tiny_proposals),
                "--model", str(tiny_upstream / "teacher"), "--out", str(tmp_path / out)]

    finished = checkpoints / "cache_teacher"
    _kill_when(_stage_command("cache_teacher.py", args("cache")), lambda: any(finished.glob("*/train.h5")))
    assert not (tmp_path / "cache").exists()
    (train,) = finished.glob("*/train.h5")
    written = train.stat().st_mtime_ns
    _run_in_process("cache_teacher.py", args("cache"), monkeypatch)
    assert (tmp_path / "cache" / "train.h5").stat().st_mtime_ns == written, "the finished split is not redone"
    for name in ("train", "val", "test"):
        with TeacherCache(tmp_path / "cache" / f"{name}.h5") as resumed, \
                TeacherCache(tiny_upstream / "cache" / f"{name}.h5") as reference:
            np.testing.assert_allclose(resumed.image_scores(), reference.image_scores(), rtol=1e-5, atol=1e-6)
    assert not finished.exists()


@KILL
def test_proposals_killed_between_shards_resume_to_the_same_file(tmp_path, tiny_manifest, default_params,
                                                                  checkpoints, monkeypatch):
    """The image after the first shards is a FIFO: the stage blocks reading it, and is killed right there."""
    from wsdkd.data.manifest import read_split, write_manifest
    from wsdkd.proposals.store import ProposalReader

    split = read_split(tiny_manifest, "test")
    images = tmp_path / "images"
    images.mkdir()
    paths = [images / p.name for p in split.paths]
    for source, copy in zip(split.paths, paths):
        copy.write_bytes(source.read_bytes())
    paths[4].unlink()
    os.mkfifo(paths[4])
    manifest = tmp_path / "manifest"
    write_manifest(manifest, {"test": dataclasses.replace(split, paths=paths)}, source="builtin")
    params = {**default_params, "proposals": {**default_params["proposals"], "shard_size": 2, "num_proposals": 20}}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    def args(out: str) -> list[str]:
        return ["--params", str(params_file), "--manifest", str(manifest), "--split", "test",
                "--out", str(tmp_path / out), "--workers", "1", "--quiet"]

    shards = checkpoints / "proposals_test"
    _kill_when(_stage_command("extract_proposals.py", args("test.h5")),
               lambda: len(list(shards.glob("*/shard_*.h5"))) == 2)
    assert not (tmp_path / "test.h5").exists()

    paths[4].unlink()
    paths[4].write_bytes(split.paths[4].read_bytes())
    _run_in_process("extract_proposals.py", args("test.h5"), monkeypatch)
    _run_in_process("extract_proposals.py", args("reference.h5"), monkeypatch)
    with ProposalReader(tmp_path / "test.h5") as resumed, ProposalReader(tmp_path / "reference.h5") as reference:
        np.testing.assert_array_equal(resumed.image_ids, split.image_ids)
        for got, want in zip(resumed.all_rows(), reference.all_rows()):
            np.testing.assert_array_equal(got, want)
    assert not shards.exists(), "the shards go once the split's file is whole"


# ---- corruptions ----

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@CORRUPTION
def test_truncated_teacher_cache_is_named_and_removed_so_its_stage_reruns(tiny_upstream, stage1_student, tiny_manifest,
                                                                         params_file, tmp_path, checkpoints):
    import shutil

    cache = tmp_path / "teacher_cache"
    shutil.copytree(tiny_upstream / "cache", cache)
    _truncate(cache / "train.h5")
    result = subprocess.run(_stage_command("train_distilled.py", [
        "--params", str(params_file), "--manifest", str(tiny_manifest), "--cache", str(cache),
        "--teacher", str(tiny_upstream / "teacher"), "--init", str(stage1_student), "--out", str(tmp_path / "out"),
        "--live", str(tmp_path / "live")]), env={**os.environ, "PYTHONPATH": str(PROJECT / "src")},
        capture_output=True, text=True)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()[-1:]
    assert line.startswith(f"error: {cache / 'train.h5'}: not a whole HDF5 file")
    assert line.endswith(f"removed {cache}, so the next run remakes it (stage cache_teacher)")
    assert not cache.exists() and not (tmp_path / "out").exists()


@CORRUPTION
def test_a_damaged_chunk_fails_its_checksum_instead_of_reading_as_numbers(tmp_path):
    import h5py

    from wsdkd.pipeline.errors import DamagedFile
    from wsdkd.proposals.store import ProposalReader, write_proposals

    path = tmp_path / "p.h5"
    boxes = np.arange(3 * 5 * 4, dtype=np.float32).reshape(3, 5, 4)
    write_proposals(path, np.array([1, 2, 3]), boxes, np.ones((3, 5), np.float32), np.array([5, 5, 5]), {})
    with h5py.File(path, "r") as file:
        chunk = file["boxes"].id.get_chunk_info(1)
    with open(path, "r+b") as file:  # flip the bytes of image 1's boxes on disk
        file.seek(chunk.byte_offset)
        file.write(bytes(b ^ 0xFF for b in file.read(8)))
    with ProposalReader(path) as reader:
        assert np.array_equal(reader.get(0)[0], boxes[0]), "the other images still read"
        with pytest.raises(DamagedFile, match=rf"{path}: damaged data in boxes \(.*filter returned failure"):
            reader.get(1)


@CORRUPTION
def test_a_truncated_proposal_shard_is_named_and_redone(tmp_path, caplog):
    from wsdkd.proposals.extract import extract_shards
    from wsdkd.proposals.store import ProposalReader

    from .test_proposals import cfg, write_scenes

    paths, config = write_scenes(tmp_path / "images", 4), cfg(shard_size=2)
    shards = extract_shards([1, 2, 3, 4], paths, config, tmp_path / "resume", progress=False)
    with ProposalReader(shards[1]) as reader:
        before = reader.all_rows()
    kept = shards[0].stat().st_mtime_ns
    _truncate(shards[1])
    extract_shards([1, 2, 3, 4], paths, config, tmp_path / "resume", progress=False)
    assert f"{shards[1]}: not a whole HDF5 file" in caplog.text and "making it again" in caplog.text
    assert shards[0].stat().st_mtime_ns == kept, "the whole shard is kept"
    with ProposalReader(shards[1]) as reader:
        for got, want in zip(reader.all_rows(), before):
            np.testing.assert_array_equal(got, want)


@CORRUPTION
@pytest.mark.parametrize("damage", ["truncated", "another model's weights"])
def test_bad_checkpoint_is_named_discarded_and_training_starts_afresh(damage, default_params, tiny_manifest,
                                                                      tmp_path, checkpoints, caplog):
    from wsdkd.engine import checkpoint
    from wsdkd.student.training import train_student

    cfg = {**default_params["student"], **TINY_STUDENT, "epochs": 2}
    real_save = checkpoint.save

    def killed_after_first_epoch(directory, state):
        real_save(directory, state)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint, "save", killed_after_first_epoch)
        with pytest.raises(KeyboardInterrupt):
            train_student(cfg, tiny_manifest, tmp_path / "out", tmp_path / "live", "damaged")
    (last,) = (checkpoints / "damaged").glob("*/last.pt")
    if damage == "truncated":
        _truncate(last)
    else:  # as if the code had changed the model under the same params
        state = torch.load(last, weights_only=False)
        state["model"]["classifier.weight"] = torch.zeros(3, state["model"]["classifier.weight"].shape[1])
        torch.save(state, last)
    history = train_student(cfg, tiny_manifest, tmp_path / "out", tmp_path / "live", "damaged")
    assert f"{last}: checkpoint discarded, training starts afresh" in caplog.text
    fresh = train_student(cfg, tiny_manifest, tmp_path / "fresh", tmp_path / "fresh_live", "fresh")
    assert [h["train/loss"] for h in history] == pytest.approx([h["train/loss"] for h in fresh])


# ---- numerical faults ----

@NUMERICAL
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_loss_stops_with_step_and_images_keeping_the_last_good_checkpoint(value, default_params,
                                                                                    tiny_manifest, tmp_path,
                                                                                    checkpoints, monkeypatch):
    from wsdkd.student import training as student_module
    from wsdkd.student.training import classifier_step, train_student

    calls = {"n": 0}
    batches_per_epoch = -(-18 // 8)

    def poisoned_in_epoch_2(model, images, labels, index):
        out = classifier_step(model, images, labels, index)
        if model.training:
            calls["n"] += 1
            if calls["n"] == batches_per_epoch + 2:
                out["loss"] = out["loss"] * value
        return out

    monkeypatch.setattr(student_module, "classifier_step", poisoned_in_epoch_2)
    cfg = {**default_params["student"], **TINY_STUDENT, "epochs": 3}
    with pytest.raises(UserError, match=rf"loss is {value} at epoch 2, step 2; batch image ids \[\d+(, \d+)*\]; "
                                        r"the checkpoint after epoch 1 is kept in .*last.pt$"):
        train_student(cfg, tiny_manifest, tmp_path / "out", tmp_path / "live", "nan")
    (last,) = (checkpoints / "nan").glob("*/last.pt")
    assert torch.load(last, weights_only=False)["epoch"] == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "live").exists()


@NUMERICAL
def test_weights_gone_non_finite_in_an_epochs_last_step_are_not_checkpointed(default_params, tiny_manifest,
                                                                             tmp_path, checkpoints, monkeypatch):
    from wsdkd.student import training as student_module
    from wsdkd.student.training import classifier_step, train_student

    def last_step_poisons_the_classifier(model, images, labels, index):
        out = classifier_step(model, images, labels, index)
        if model.training and len(images) < 8:  # the epoch's last, short batch: 18 images in batches of 8
            model.classifier.bias.register_hook(lambda grad: torch.full_like(grad, float("inf")))
        return out

    monkeypatch.setattr(student_module, "classifier_step", last_step_poisons_the_classifier)
    cfg = {**default_params["student"], **TINY_STUDENT, "epochs": 2}
    with pytest.raises(UserError, match=r"weights classifier.bias are not finite after epoch 1; no epoch had "
                                        r"finished, so there is no checkpoint"):
        train_student(cfg, tiny_manifest, tmp_path / "out", tmp_path / "live", "diverged")
    assert not list(checkpoints.glob("diverged/*/last.pt"))


# ---- concurrent runs ----

@CONCURRENCY
def test_snakemake_is_refused_while_dvc_holds_the_workspace(tmp_path):
    from dvc.lock import Lock

    dvc = Lock(str(tmp_path / ".dvc" / "tmp" / "lock"))
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    dvc.lock()
    try:
        with pytest.raises(UserError, match=rf"lock: the workspace is in use by dvc \(pid {os.getpid()}\); "
                                            r"nothing was run or overwritten"):
            WorkspaceLock(tmp_path).acquire()
    finally:
        dvc.unlock()
    WorkspaceLock(tmp_path).acquire()  # free again once DVC is done


@CONCURRENCY
def test_dvc_and_a_second_snakemake_are_refused_while_snakemake_holds_the_workspace(tmp_path):
    from dvc.lock import Lock, LockError

    ours = WorkspaceLock(tmp_path)
    ours.acquire()
    with pytest.raises(UserError, match=rf"in use by another snakemake run \(pid {os.getpid()}\)"):
        WorkspaceLock(tmp_path).acquire()
    with pytest.raises(LockError, match="Unable to acquire lock"):
        Lock(str(tmp_path / ".dvc" / "tmp" / "lock")).lock()
    ours.release()
    dvc = Lock(str(tmp_path / ".dvc" / "tmp" / "lock"))
    dvc.lock()
    dvc.unlock()


@CONCURRENCY
def test_snakemake_started_while_dvc_runs_stops_before_its_first_job(tmp_path):
    from dvc.lock import Lock

    from .test_e2e import scratch_workspace

    workspace = scratch_workspace(tmp_path / "repo")
    lock_file = workspace.root / ".dvc" / "tmp" / "lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    dvc = Lock(str(lock_file))
    dvc.lock()
    try:
        result = subprocess.run(["snakemake", "--cores", "1"], cwd=workspace.root, env=workspace.env,
                                capture_output=True, text=True)
    finally:
        dvc.unlock()
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (f"error: {lock_file}: the workspace is in use by dvc (pid {os.getpid()}); "
                                              f"nothing was run or overwritten (wait for it to finish)")
    assert not (workspace.root / "data").exists() and not (workspace.root / "models").exists()
