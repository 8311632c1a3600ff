"""Stage `dataset`: synthesise the built-in data (or locate real COCO) and write the manifest."""

import argparse
import logging

from wsdkd.config import load_params
from wsdkd.data.prepare import prepare_dataset
from wsdkd.errors import exits_cleanly


@exits_cleanly
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/dataset")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prepare_dataset(load_params(args.params)["dataset"], args.out)


if __name__ == "__main__":
    main()
