"""Stage `student_inputs`: every split's images decoded and resized once, at student.input_size, for every
student stage (data/student_inputs/<split>.npy)."""

from pathlib import Path

from wsdkd.data.student_inputs import write_inputs
from wsdkd.engine.stage_cli import stage_parser, start_logging, upstream_outputs
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly
from wsdkd.pipeline.remake import remade_if_damaged
from wsdkd.student.training import read_splits


@exits_cleanly
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/student_inputs"))
    args = parser.parse_args()
    params = load_params(args.params)
    start_logging(params)
    with remade_if_damaged(upstream_outputs(args)):
        write_inputs(read_splits(args.manifest), params["student"]["input_size"], args.out)


if __name__ == "__main__":
    main()
