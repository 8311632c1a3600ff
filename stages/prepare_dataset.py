"""Stage `dataset`: synthesise the built-in data (or locate real COCO) and write the manifest."""

import argparse
from pathlib import Path

from wsdkd.data.manifest import read_split
from wsdkd.data.prepare import prepare_dataset
from wsdkd.data.preview import render_samples
from wsdkd.engine.stage_cli import start_logging
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import exits_cleanly


@exits_cleanly
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, default=Path("data/dataset"))
    parser.add_argument("--samples", type=Path, default=Path("reports/dataset_samples.png"),
                        help="a contact sheet of training images with their ground-truth boxes or labels")
    args = parser.parse_args()
    start_logging()
    prepare_dataset(load_params(args.params)["dataset"], args.out)
    render_samples(read_split(args.out, "train"), args.samples)


if __name__ == "__main__":
    main()
