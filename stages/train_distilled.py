"""Stage `train_distilled`: stage 2 of the paper, S-Cls w/ (BCE + class-aware distillation, Eq. 5-11)."""

from pathlib import Path

from wsdkd.distill.training import train_distilled
from wsdkd.engine.stage_cli import stage_parser, start_logging, start_training, upstream_outputs
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly
from wsdkd.pipeline.remake import remade_if_damaged


@exits_cleanly
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--cache", type=Path, default=Path("data/teacher_cache"), help="folder of {split}.h5")
    parser.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    parser.add_argument("--init", type=Path, default=Path("models/student_features"), help="stage 1's output")
    parser.add_argument("--inputs", type=Path, default=None,
                        help="the student_inputs stage's decoded images (dvc.yaml passes them; without: the JPEGs)")
    parser.add_argument("--out", type=Path, default=Path("models/student_w"))
    parser.add_argument("--live", type=Path, default=Path("reports/student_w"), help="dvclive folder")
    parser.add_argument("--stage", default="train_distilled", help="names the resume folder")
    args = parser.parse_args()
    params = load_params(args.params)
    start_logging(params)
    hardware = start_training(params)
    with remade_if_damaged(upstream_outputs(args)):
        train_distilled(params["student"], params["distill"]["predictions"], args.manifest, args.cache, args.teacher,
                        args.init, args.out, args.live, args.stage, hardware, args.inputs)


if __name__ == "__main__":
    main()
