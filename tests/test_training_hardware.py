"""The shared loop's hardware settings change speed, not what is learnt: DDP over two gloo processes on CPU
trains as one process does (and only rank 0 writes), and so do loader workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from wsdkd.engine import distributed
from wsdkd.engine.loop import Hardware, LoopConfig, fit
from wsdkd.pipeline.errors import UserError

FEATURES, CLASSES = 6, 3


class Points(Dataset):
    """(features, labels, index) of a fixed random problem: the shape of batch the loop expects."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, FEATURES, generator=generator)
        self.y = (torch.rand(size, CLASSES, generator=generator) < 0.5).float()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index], index


class RecordingStep:
    """BCE of a linear model; in evaluation it also saves the weights it sees (the rank's final weights)."""

    def __init__(self, path) -> None:
        self.path = path

    def __call__(self, model, x, y, _index) -> dict:
        logits = model(x)
        if not model.training:
            torch.save(model.state_dict(), self.path)
        return {"loss": nn.functional.binary_cross_entropy_with_logits(logits, y), "logits": logits}


def _train(root, name: str, workers: int = 0) -> list[dict]:
    torch.manual_seed(0)
    model = nn.Linear(FEATURES, CLASSES)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    cfg = LoopConfig(epochs=3, batch_size=8, seed=0, num_workers=workers, hflip=False, amp=False,
                     device=torch.device("cpu"), hardware=Hardware(prefetch_factor=3, persistent_workers=True))
    return fit(model, RecordingStep(root / f"{name}_weights.pt"), Points(24, 1), Points(6, 2), cfg, optimizer, None,
               root / name / "resume", root / name / "live", np.arange(24))


def _rank(rank: int, root, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.launch(devices=2)  # WORLD_SIZE is set, as torchrun sets it: joins the gloo group
    _train(root, f"rank{rank}")  # each rank names its own folders, so a write by rank 1 would show


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_train_like_one(tmp_path):
    single = _train(tmp_path, "single")
    # fork: the ranks inherit the imported torch instead of importing it again (seconds each)
    torch.multiprocessing.start_processes(_rank, args=(tmp_path, _free_port()), nprocs=2, start_method="fork")

    rank0 = torch.load(tmp_path / "rank0_weights.pt")
    rank1 = torch.load(tmp_path / "rank1_weights.pt")
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), f"ranks disagree on {key}"
        torch.testing.assert_close(value, torch.load(tmp_path / "single_weights.pt")[key], rtol=1e-5, atol=1e-6)

    checkpoint = torch.load(tmp_path / "rank0" / "resume" / "last.pt", weights_only=False)
    assert checkpoint["epoch"] == 3
    for ddp, one in zip(checkpoint["history"], single):
        assert ddp["train/loss"] == pytest.approx(one["train/loss"], rel=1e-5), "the loss is pooled over ranks"
        assert ddp["val/mAP"] == pytest.approx(one["val/mAP"], rel=1e-5), "the validation shards are pooled"
    assert (tmp_path / "rank0" / "live" / "metrics.json").is_file()
    assert not (tmp_path / "rank1").exists(), "rank 1 wrote no checkpoint and no curves"


def test_several_devices_without_cuda_train_in_one_process(monkeypatch, caplog):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(os, "execv", lambda *args: pytest.fail("relaunched without a GPU"))
    distributed.launch(devices=4)
    assert "no CUDA device is visible" in caplog.text and distributed.world_size() == 1


def test_several_gpus_relaunch_the_same_command_under_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(sys, "argv", ["stages/train_student.py", "--params", "params.yaml"])
    calls = []
    monkeypatch.setattr(os, "execv", lambda *args: calls.append(args))
    distributed.launch(devices=2)
    assert calls == [(sys.executable, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                       "--nproc_per_node=2", "stages/train_student.py", "--params", "params.yaml"])]
    with pytest.raises(UserError, match=r"^params.yaml: train.devices: 4 GPUs asked for, 2 visible$"):
        distributed.launch(devices=4)


def test_persistent_prefetching_workers_train_like_the_main_process(tmp_path):
    _train(tmp_path, "inline")
    _train(tmp_path, "workers", workers=2)
    inline, workers = torch.load(tmp_path / "inline_weights.pt"), torch.load(tmp_path / "workers_weights.pt")
    for key, value in inline.items():
        assert torch.equal(value, workers[key]), f"{key} differs with loader workers"


@pytest.mark.parametrize("given, expected", [({}, ["1000", "0"]), ({"OMP_WAIT_POLICY": "PASSIVE"}, ["None", "None"]),
                                             ({"GOMP_SPINCOUNT": "5"}, ["5", "None"])])
def test_openmp_wait_policy_is_a_short_spin_unless_the_user_set_one(given, expected):
    """The package sets GOMP_SPINCOUNT (and KMP_BLOCKTIME) on import, before torch loads, only when neither it nor
    OMP_WAIT_POLICY is set: a user's own policy wins."""
    policy = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
    env = {key: value for key, value in os.environ.items() if key not in policy}
    script = "import os, wsdkd; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))"
    out = subprocess.run([sys.executable, "-c", script], env={**env, **given}, capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == expected
