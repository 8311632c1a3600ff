"""Stage `evaluate`: every metric of METHOD.md §7 for each model, as DVC metrics, a table and a plot."""

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
    parser.add_argument("--prefix", default="reports/coco", help="writes PREFIX_metrics.json, _per_class.md, _pr.png")
    args = parser.parse_args()
    start_logging()
    models = dict(args.model)
    if len(models) != len(args.model):
        raise UserError("--model: the same NAME is given twice")
    prefix = args.prefix
    evaluate_models(models, load_params(args.params)["evaluate"], args.dataset, Path(f"{prefix}_metrics.json"),
                    Path(f"{prefix}_per_class.md"), Path(f"{prefix}_pr.png"))


if __name__ == "__main__":
    main()
