"""Stage `train_student`: the student classifier without distillation (S-Cls w/o)."""

import argparse
import logging
from pathlib import Path

from wsdkd.config import load_params
from wsdkd.errors import exits_cleanly
from wsdkd.train.student import train_student


@exits_cleanly
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", type=Path, default=Path("data/dataset"))
    parser.add_argument("--out", type=Path, default=Path("models/student_wo"))
    parser.add_argument("--live", type=Path, default=Path("reports/student_wo"), help="dvclive folder")
    parser.add_argument("--stage", default="train_student", help="names the resume folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    train_student(load_params(args.params)["student"], args.manifest, args.out, args.live, args.stage)


if __name__ == "__main__":
    main()
