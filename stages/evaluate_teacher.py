"""Stage `evaluate_teacher`: the teacher's image predictions (for `evaluate`) and its CorLoc / box AP."""

from pathlib import Path

from wsdkd.data.manifest import read_split
from wsdkd.engine.stage_cli import stage_parser, start_logging, upstream_outputs
from wsdkd.evaluate.predictions import write_predictions
from wsdkd.evaluate.reports import DESCRIPTION_FILE
from wsdkd.pipeline.atomic import atomic_path
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly
from wsdkd.pipeline.remake import remade_if_damaged
from wsdkd.teacher.cache import TeacherCache
from wsdkd.teacher.evaluation import detection_report, predictions_from_cache, write_report

SPLITS = ("val", "test")


@exits_cleanly
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--cache", type=Path, default=Path("data/teacher_cache"), help="cache_teacher's folder")
    parser.add_argument("--model", type=Path, default=Path("models/teacher"), help="train_teacher's folder")
    parser.add_argument("--out", type=Path, default=Path("models/teacher_predictions"),
                        help="folder for predictions_{val,test}.parquet")
    parser.add_argument("--detection", type=Path, default=Path("reports/teacher_detection.json"))
    args = parser.parse_args()
    start_logging()
    cfg = load_params(args.params)["evaluate"]
    report = {}
    with remade_if_damaged(upstream_outputs(args)), atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        (tmp / DESCRIPTION_FILE).write_text((args.model / DESCRIPTION_FILE).read_text())
        for name in SPLITS:
            split = read_split(args.manifest, name)
            with TeacherCache(args.cache / f"{name}.h5") as cache:
                write_predictions(tmp / f"predictions_{name}.parquet", predictions_from_cache(cache, split))
                if split.annotations is not None:
                    report[name] = detection_report(cache, split, cfg["detection_nms_iou"])
    write_report(report, args.detection)
    for name, metrics in report.items():
        print(f"{name}: CorLoc {metrics['corloc']}%, box AP {metrics['box_ap']}, AP50 {metrics['box_ap50']}")


if __name__ == "__main__":
    main()
