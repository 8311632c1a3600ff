"""Stage `evaluate`: every metric of METHOD.md §7 for each model: the compared ones as DVC metrics, all of them
in a report, a table, a plot and the plots' data."""

import argparse
from pathlib import Path

from wsdkd.engine.stage_cli import start_logging
from wsdkd.evaluate.reports import evaluate_models
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import UserError, exits_cleanly


def _named_folder(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {text!r}")
    return name, Path(folder)


@exits_cleanly
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--model", type=_named_folder, action="append", required=True,
                        help="NAME=FOLDER with predictions_{val,test}.parquet; repeat for several models")
    parser.add_argument("--prefix", default="reports/coco",
                        help="writes PREFIX_metrics.json, _evaluation.json, _per_class.md, _pr.png and _plots/")
    args = parser.parse_args()
    params = load_params(args.params)
    start_logging(params)
    models = dict(args.model)
    if len(models) != len(args.model):
        raise UserError("--model: the same NAME is given twice")
    evaluate_models(models, params["evaluate"], args.dataset, args.prefix)


if __name__ == "__main__":
    main()
