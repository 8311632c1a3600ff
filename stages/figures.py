"""Stage `figures`: the paper's Figure 3 (teacher boxes, student top-3 w/o vs w/) and Figure 4 (per-class AP gain)."""

from pathlib import Path

from wsdkd.data.manifest import read_split
from wsdkd.engine.stage_cli import stage_parser, start_logging
from wsdkd.evaluate.predictions import read_predictions
from wsdkd.paper.figures import class_ap_gain, plot_ap_gain, plot_examples
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly


@exits_cleanly
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--cache", type=Path, default=Path("data/teacher_cache"), help="folder of {split}.h5")
    parser.add_argument("--without", type=Path, default=Path("models/student_wo"), help="the baseline student")
    parser.add_argument("--with", dest="with_", type=Path, default=Path("models/student_w"),
                        help="the distilled student")
    parser.add_argument("--figure3", type=Path, default=Path("reports/figure3.png"))
    parser.add_argument("--figure4", type=Path, default=Path("reports/figure4.png"))
    args = parser.parse_args()
    start_logging()
    cfg = load_params(args.params)["figures"]
    test = read_split(args.manifest, "test")
    without = read_predictions(args.without / "predictions_test.parquet")
    with_ = read_predictions(args.with_ / "predictions_test.parquet")
    plot_examples(test, args.cache / "test.h5", without, with_, args.figure3, cfg["examples"], cfg["seed"],
                  cfg["boxes"])
    plot_ap_gain(class_ap_gain(without, with_, read_split(args.manifest, "train").labels), args.figure4)


if __name__ == "__main__":
    main()
