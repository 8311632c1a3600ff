"""Stage `train_teacher`: T-WDet, the weakly supervised detector that teaches (paper Eq. 2)."""

from pathlib import Path

from wsdkd.engine.stage_cli import stage_parser, start_logging, start_training, upstream_outputs
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly
from wsdkd.pipeline.remake import remade_if_damaged
from wsdkd.teacher.training import train_teacher


@exits_cleanly
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--proposals", type=Path, default=Path("data/proposals"), help="folder of {split}.h5")
    parser.add_argument("--out", type=Path, default=Path("models/teacher"))
    parser.add_argument("--live", type=Path, default=Path("reports/teacher"), help="dvclive folder")
    parser.add_argument("--stage", default="train_teacher", help="names the resume folder")
    args = parser.parse_args()
    start_logging()
    params = load_params(args.params)
    hardware = start_training(params)
    with remade_if_damaged(upstream_outputs(args)):
        train_teacher(params["teacher"], args.manifest, args.proposals, args.out, args.live, args.stage,
                      hardware=hardware)


if __name__ == "__main__":
    main()
