"""Stage `train_student`: the student classifier without distillation (S-Cls w/o)."""

from pathlib import Path

from wsdkd.engine.stage_cli import stage_parser, start_logging, start_training, upstream_outputs
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly
from wsdkd.pipeline.remake import remade_if_damaged
from wsdkd.student.training import train_student


@exits_cleanly
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--inputs", type=Path, default=None,
                        help="the student_inputs stage's decoded images (dvc.yaml passes them; without: the JPEGs)")
    parser.add_argument("--out", type=Path, default=Path("models/student_wo"))
    parser.add_argument("--live", type=Path, default=Path("reports/student_wo"), help="dvclive folder")
    parser.add_argument("--stage", default="train_student", help="names the resume folder")
    args = parser.parse_args()
    params = load_params(args.params)
    start_logging(params)
    hardware = start_training(params)
    with remade_if_damaged(upstream_outputs(args)):
        train_student(params["student"], args.manifest, args.out, args.live, args.stage, hardware,
                      args.inputs)


if __name__ == "__main__":
    main()
