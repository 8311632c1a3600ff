"""Stage `convergence`: validation mAP per epoch of the plain and the distilled student, and whether it flattened."""

import argparse
from pathlib import Path

from wsdkd.engine.stage_cli import start_logging
from wsdkd.evaluate.convergence import plot_curves, read_curve, tail_report, write_json
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly


@exits_cleanly
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--without", type=Path, default=Path("reports/student_wo"),
                        help="the plain student's dvclive folder")
    parser.add_argument("--with", dest="with_", type=Path, default=Path("reports/student_w"),
                        help="the distilled student's (stage 2) dvclive folder")
    parser.add_argument("--figure", type=Path, default=Path("reports/convergence.png"))
    parser.add_argument("--report", type=Path, default=Path("reports/convergence.json"))
    args = parser.parse_args()
    params = load_params(args.params)
    start_logging(params)
    cfg = params["convergence"]
    curves = {"S-Cls w/o": read_curve(args.without), "S-Cls w/ (ours)": read_curve(args.with_)}
    report = tail_report(curves, cfg)
    write_json(args.report, {"tail": cfg["tail"], "tail_max_gain": cfg["tail_max_gain"], "runs": report})
    plot_curves(curves, report, args.figure)


if __name__ == "__main__":
    main()
