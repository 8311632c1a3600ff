"""Per-image class scores as a Parquet file: what a model stage writes and the evaluation stage reads.

Columns: ``image_id`` (int64), ``scores`` (K float32 probabilities in class order), ``labels`` (K 0/1 ground
truth). The class names are stored in the file's metadata so a predictions file is readable on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..pipeline.atomic import atomic_path
from ..pipeline.errors import UserError


@dataclass(frozen=True)
class Predictions:
    image_ids: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N, K) float32 in [0, 1]
    labels: np.ndarray  # (N, K) uint8
    class_names: list[str]


def write_predictions(path: str | Path, preds: Predictions) -> None:
    n, k = preds.scores.shape
    if preds.labels.shape != (n, k) or len(preds.image_ids) != n or len(preds.class_names) != k:
        raise ValueError(f"inconsistent predictions: scores {preds.scores.shape}, labels {preds.labels.shape}, "
                         f"{len(preds.image_ids)} ids, {len(preds.class_names)} classes")
    table = pa.table({
        "image_id": pa.array(preds.image_ids, pa.int64()),
        "scores": pa.array(list(preds.scores.astype(np.float32)), pa.list_(pa.float32(), k)),
        "labels": pa.array(list(preds.labels.astype(np.uint8)), pa.list_(pa.uint8(), k)),
    }).replace_schema_metadata({"class_names": json.dumps(preds.class_names)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_predictions(path: str | Path) -> Predictions:
    path = Path(path)
    try:
        table = pq.read_table(path)
        class_names = json.loads(table.schema.metadata[b"class_names"])
    except FileNotFoundError:
        raise UserError(f"{path}: predictions file not found") from None
    except (pa.ArrowInvalid, OSError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a predictions file ({exc})") from None
    k = len(class_names)
    n = table.num_rows
    scores = np.asarray(table.column("scores").combine_chunks().flatten(), np.float32).reshape(n, k)
    labels = np.asarray(table.column("labels").combine_chunks().flatten(), np.uint8).reshape(n, k)
    return Predictions(table.column("image_id").to_numpy(), scores, labels, class_names)
