"""The numbers people compare across runs: what the DVC ``metrics:`` files hold, and nothing else.

``dvc metrics diff`` and ``dvc exp show`` list every number of every metrics file, so paths, counts and per-size or
per-class details there bury the few that matter. Each function picks those few from a stage's full report (which
stays a plain JSON output beside it): per model mAP, F1-C, F1-O, top-k F1 and tuned F1 (METHOD.md §7); the
teacher's CorLoc and box AP; proposal recall at IoU 0.5 and 0.7.

``dvc exp show`` makes a column of every key path and a student experiment changes the seven numbers of both
students, so the metrics file names the students by the short half of their names: ``wo`` and ``w`` (the plain
and the distilled student, models/student_wo and models/student_w, the paper's S-Cls w/o and w/ distillation),
each of those 14 columns 8 characters narrower (``wo.mAP``, not ``student_wo.mAP``). The other reports keep the
full names.
"""

from __future__ import annotations

# Keys of evaluation.evaluate's headline; "top{k}" is filled with evaluate.top_k, the tuned pair needs a val split.
MODEL_KEYS = ("mAP", "F1_C", "F1_O", "top{k}_F1_C", "top{k}_F1_O", "tuned_F1_C", "tuned_F1_O")
TEACHER_KEYS = ("corloc", "box_ap")  # of teacher_eval.detection_report, per split
PROPOSAL_KEYS = ("recall@0.5", "recall@0.7")  # of proposals.recall.recall_report's "overall"
METRICS_NAMES = {"student_wo": "wo", "student_w": "w"}  # a model's key in the metrics file; others keep their name


def metrics_name(model: str) -> str:
    """The key of model ``model`` (a name of the evaluate stage's --model) in ``<dataset>_metrics.json``."""
    return METRICS_NAMES.get(model, model)


def model_metrics(headline: dict, top_k: int) -> dict:
    """The compared numbers of one model's headline (``evaluation.evaluate``); keys it lacks are left out."""
    keys = [key.format(k=top_k) for key in MODEL_KEYS]
    return {key: headline[key] for key in keys if key in headline}


def teacher_metrics(detection: dict) -> dict:
    """Split -> CorLoc and box AP, from the teacher's detection report (split -> every detection number)."""
    return {split: {key: numbers[key] for key in TEACHER_KEYS} for split, numbers in detection.items()}


def proposal_metrics(recall: dict) -> dict:
    """Recall at IoU 0.5 and 0.7 from a proposal recall report (None where the split has no ground-truth box)."""
    return {key: recall["overall"][key] for key in PROPOSAL_KEYS}
