"""What every stage script shares: the params and manifest flags, and log lines people can read."""

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
