"""How ``wsdkd predict`` writes one image's scores: JSON Lines, CSV or an aligned table for people.

Every format gives the path, the labels whose score is strictly above the threshold (the paper's I(p > tau))
sorted by score, and the top-k classes sorted by score (ties keep class order).
"""

from __future__ import annotations

import csv
import json
from typing import Sequence, TextIO

import numpy as np

FORMATS = ("jsonl", "csv", "table")
# Machine formats keep float32's meaningful digits; the table is for reading.
SCORE_DIGITS = 6
TABLE_DIGITS = 3
# CSV cells that hold several (class, score) pairs: "name:score;name:score".
PAIR_SEP, ITEM_SEP = ":", ";"


def ranked(scores: np.ndarray, class_names: Sequence[str], threshold: float,
           top_k: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(labels above ``threshold``, the ``top_k`` best), each as (class name, score) from best to worst."""
    order = np.argsort(-scores, kind="stable")
    pairs = [(class_names[i], float(scores[i])) for i in order]
    return [p for p in pairs if p[1] > threshold], pairs[:top_k]


class Writer:
    """Writes a header (if the format has one) on creation, then one record per ``write``."""

    def __init__(self, stream: TextIO, class_names: Sequence[str], threshold: float, top_k: int):
        self.stream, self.class_names = stream, list(class_names)
        self.threshold, self.top_k = threshold, top_k

    def write(self, path: str, scores: np.ndarray) -> None:
        raise NotImplementedError


class JsonLinesWriter(Writer):
    def write(self, path: str, scores: np.ndarray) -> None:
        labels, top = ranked(scores, self.class_names, self.threshold, self.top_k)
        record = {
            "path": path,
            "labels": [{"name": n, "score": round(s, SCORE_DIGITS)} for n, s in labels],
            "top_k": [{"name": n, "score": round(s, SCORE_DIGITS)} for n, s in top],
            "scores": {n: round(float(s), SCORE_DIGITS) for n, s in zip(self.class_names, scores)},
        }
        self.stream.write(json.dumps(record) + "\n")


class CsvWriter(Writer):
    """Columns: path, labels (names joined by ';'), topk ('name:score;...'), then one score column per class."""

    def __init__(self, stream: TextIO, class_names: Sequence[str], threshold: float, top_k: int):
        super().__init__(stream, class_names, threshold, top_k)
        self.rows = csv.writer(stream, lineterminator="\n")
        self.rows.writerow(["path", "labels", "topk", *self.class_names])

    def write(self, path: str, scores: np.ndarray) -> None:
        labels, top = ranked(scores, self.class_names, self.threshold, self.top_k)
        self.rows.writerow([
            path, ITEM_SEP.join(n for n, _ in labels),
            ITEM_SEP.join(f"{n}{PAIR_SEP}{s:.{SCORE_DIGITS}f}" for n, s in top),
            *(f"{s:.{SCORE_DIGITS}f}" for s in scores),
        ])


class TableWriter(Writer):
    """One aligned line per image: path, top-k, then the labels (the only column of varying length)."""

    def __init__(self, stream: TextIO, class_names: Sequence[str], threshold: float, top_k: int,
                 path_width: int):
        super().__init__(stream, class_names, threshold, top_k)
        self.path_width = max(path_width, len("path"))
        # "name 0.123" per class, two spaces apart; known in advance so every row lines up.
        cell = max(map(len, self.class_names)) + len(" 0.") + TABLE_DIGITS + len("  ")
        self.top_width = min(top_k, len(self.class_names)) * cell
        stream.write(f"{'path':<{self.path_width}}  {f'top-{top_k}':<{self.top_width}}  labels > {threshold:g}\n")

    def write(self, path: str, scores: np.ndarray) -> None:
        labels, top = ranked(scores, self.class_names, self.threshold, self.top_k)
        top_text = "  ".join(f"{n} {s:.{TABLE_DIGITS}f}" for n, s in top)
        label_text = ", ".join(f"{n} {s:.{TABLE_DIGITS}f}" for n, s in labels) or "-"
        self.stream.write(f"{path:<{self.path_width}}  {top_text:<{self.top_width}}  {label_text}\n")


def make_writer(fmt: str, stream: TextIO, class_names: Sequence[str], threshold: float, top_k: int,
                paths: Sequence[str]) -> Writer:
    """A writer for ``fmt`` (one of FORMATS); ``paths`` are all the paths to come (the table aligns on them)."""
    if fmt == "jsonl":
        return JsonLinesWriter(stream, class_names, threshold, top_k)
    if fmt == "csv":
        return CsvWriter(stream, class_names, threshold, top_k)
    if fmt == "table":
        return TableWriter(stream, class_names, threshold, top_k, max(map(len, paths), default=0))
    raise ValueError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})")
