"""What every stage script shares: the params and manifest flags, log lines people can read, which stage
writes each of its inputs, and for the training stages the processes and hardware of params' ``train`` section."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..data.manifest import SPLITS
from ..pipeline import progress


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--params`` and ``--manifest``, the two inputs every stage reads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", type=Path, default=Path("data/dataset"), help="the dataset stage's folder")
    return parser


def start_logging(params: dict) -> None:
    """Log lines people can read, and progress bars that suit the stage's output (params' ``progress``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    progress.configure(params["progress"])


# Which stage of dvc.yaml writes the upstream output that each stage flag names.
_PRODUCERS = {"manifest": "dataset", "model": "train_teacher", "teacher": "train_teacher",
              "cache": "cache_teacher", "init": "distill_features",
              "inputs": "student_inputs"}


def upstream_outputs(args: argparse.Namespace) -> dict[Path, str]:
    """The upstream outputs named by a stage's flags, each with the stage that writes it (for remake.py)."""
    outputs = {getattr(args, flag): stage for flag, stage in _PRODUCERS.items() if getattr(args, flag, None)}
    if getattr(args, "proposals", None):  # one output per split: a damaged split must not cost the others
        outputs.update({args.proposals / f"{split}.h5": f"proposals@{split}" for split in SPLITS})
    return outputs


def start_training(params: dict):
    """Join (or, for several GPUs, start) the DDP processes ``train.devices`` asks for; returns the loop's
    :class:`~wsdkd.engine.loop.Hardware`. Call it before any work: with several GPUs the command reruns here."""
    from .distributed import launch  # torch: imported only by the stages that train
    from .loop import Hardware

    launch(params["train"]["devices"])
    return Hardware.from_params(params["train"])
