"""Stage `cache_teacher`: the teacher's outputs on every split, with the NMS-selected proposals (§3, Eq. 4)."""

from pathlib import Path

from wsdkd.engine.stage_cli import stage_parser, start_logging, upstream_outputs
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly
from wsdkd.pipeline.remake import remade_if_damaged
from wsdkd.teacher.cache import cache_teacher


@exits_cleanly
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--proposals", type=Path, default=Path("data/proposals"), help="folder of {split}.h5")
    parser.add_argument("--model", type=Path, default=Path("models/teacher"), help="train_teacher's folder")
    parser.add_argument("--out", type=Path, default=Path("data/teacher_cache"), help="writes {split}.h5 here")
    args = parser.parse_args()
    start_logging()
    params = load_params(args.params)
    with remade_if_damaged(upstream_outputs(args)):
        cache_teacher(params["teacher"], params["cache"], args.manifest, args.proposals, args.model, args.out)


if __name__ == "__main__":
    main()
