"""What every stage script shares: the params and manifest flags, log lines people can read, and for the
training stages the processes and hardware settings of params' ``train`` section."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--params`` and ``--manifest``, the two inputs every stage reads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", type=Path, default=Path("data/dataset"), help="the dataset stage's folder")
    return parser


def start_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def start_training(params: dict):
    """Join (or, for several GPUs, start) the DDP processes ``train.devices`` asks for; returns the loop's
    :class:`~wsdkd.train.loop.Hardware`. Call it before any work: with several GPUs the command reruns here."""
    from .train.distributed import launch  # torch: imported only by the stages that train
    from .train.loop import Hardware

    launch(params["train"]["devices"])
    return Hardware.from_params(params["train"])
