"""DVC's metrics files hold the numbers people compare across runs, and only those."""

from __future__ import annotations

import pytest

from wsdkd.evaluate.compared import metrics_name, model_metrics, proposal_metrics, teacher_metrics
from wsdkd.pipeline.dag import read_stages

from .conftest import PROJECT

HEADLINE = {"mAP": 61.2, "mAP_noninterp": 60.1, "F1_C": 55.0, "F1_O": 60.5, "P_C": 70.0, "R_C": 45.0, "P_O": 72.0,
            "R_O": 52.0, "top3_F1_C": 54.0, "top3_F1_O": 59.0, "tuned_threshold": 0.3, "tuned_F1_C": 58.0,
            "tuned_F1_O": 63.0, "num_images": 12, "num_classes": 12, "classes_without_positives": 0}


def test_a_model_keeps_map_f1_top_k_and_tuned_f1():
    assert model_metrics(HEADLINE, top_k=3) == {"mAP": 61.2, "F1_C": 55.0, "F1_O": 60.5, "top3_F1_C": 54.0,
                                                "top3_F1_O": 59.0, "tuned_F1_C": 58.0, "tuned_F1_O": 63.0}


def test_the_students_go_by_short_names_in_the_metrics_file():
    assert [metrics_name(m) for m in ("student_wo", "teacher", "student_w", "mine")] == ["wo", "teacher", "w", "mine"]


def test_other_top_k_and_no_val_split():
    headline = {k: v for k, v in HEADLINE.items() if not k.startswith(("tuned", "top3"))} | {"top2_F1_O": 1.0}
    assert model_metrics(headline, top_k=2) == {"mAP": 61.2, "F1_C": 55.0, "F1_O": 60.5, "top2_F1_O": 1.0}


def test_the_teacher_keeps_corloc_and_box_ap_per_split():
    detection = {"test": {"corloc": 40.0, "corloc_class_mean": 38.0, "corloc_per_class": {"cat": 50.0},
                          "num_pairs": 30, "box_ap": 12.5, "box_ap50": 30.0, "box_ap75": 9.0}}
    assert teacher_metrics(detection) == {"test": {"corloc": 40.0, "box_ap": 12.5}}
    assert teacher_metrics({}) == {}, "a dataset without boxes has no detection numbers"


def test_proposals_keep_recall_at_0_5_and_0_7():
    report = {"proposals": "/abs/path.h5", "num_images": 3,
              "overall": {"num_gt": 5, "recall@0.5": 0.8, "recall@0.7": 0.4, "abo": 0.6, "mabo": 0.55}}
    assert proposal_metrics(report) == {"recall@0.5": 0.8, "recall@0.7": 0.4}
    with pytest.raises(KeyError):
        proposal_metrics({"overall": {"num_gt": 0}})


def test_dvc_metrics_are_the_compared_files_and_nothing_else():
    from dvc.repo import Repo

    metrics = {str(out.def_path) for stage in Repo(str(PROJECT)).index.stages for out in stage.outs if out.metric}
    assert metrics == {"reports/coco_metrics.json", "reports/teacher_metrics.json",
                       *(f"reports/proposals/metrics_{split}.json" for split in ("train", "val", "test"))}
    outs = {out for spec in read_stages(PROJECT) for out in spec.outs}
    for report in ("reports/coco_evaluation.json", "reports/teacher_detection.json",
                   "reports/proposals/recall_train.json", "reports/student_wo/metrics.json"):
        assert report in outs, f"{report}: the details stay an output, as a plain report"
