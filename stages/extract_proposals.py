"""Stage: region proposals of one split (METHOD.md section 1), with their recall report (empty without GT boxes).

    python stages/extract_proposals.py --params params.yaml --manifest data/dataset --split train \
        --out data/proposals/train.h5 --workers 4 \
        [--report reports/proposals/recall_train.json --plot reports/proposals/recall_train.png] \
        [--bad-images reports/proposals/bad_train.json]

Finished shards are kept under the resume folder until every output is written, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from wsdkd.data.manifest import read_split
from wsdkd.engine.stage_cli import upstream_outputs
from wsdkd.pipeline.atomic import write_text_atomic
from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.errors import UserError, exits_cleanly
from wsdkd.pipeline.remake import remade_if_damaged
from wsdkd.pipeline.resume import clear, resume_dir
from wsdkd.proposals.extract import extract_proposals, resume_key
from wsdkd.proposals.recall import plot_recall_curve, recall_report, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--manifest", type=Path, required=True, help="dataset manifest folder")
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", type=Path, required=True, help="proposals HDF5 file to write")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: OMP_NUM_THREADS, which Snakemake sets to the rule's "
                             "threads, else every core)")
    parser.add_argument("--report", type=Path, help="recall report JSON (no recall for a split without ground-truth boxes)")
    parser.add_argument("--plot", type=Path, help="recall-vs-proposals PNG")
    parser.add_argument("--bad-images", type=Path, help="JSON list of the unreadable images skipped")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


@exits_cleanly
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.workers is None:
        args.workers = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    if args.workers < 1:
        raise UserError(f"--workers: expected at least 1, got {args.workers}")
    cfg = load_params(args.params)["proposals"]
    with remade_if_damaged(upstream_outputs(args)):
        split = read_split(args.manifest, args.split)
    stage = f"proposals_{args.split}"
    folder = resume_dir(stage, resume_key(cfg, split.image_ids, split.paths))
    bad_images = extract_proposals(split.image_ids, split.paths, cfg, args.out, folder, args.workers,
                                   progress=not args.quiet)
    if bad_images:
        print(f"skipped {len(bad_images)} unreadable image(s): they have num_real = 0")
    if args.bad_images:
        write_text_atomic(args.bad_images, json.dumps(bad_images, indent=2) + "\n")
    if args.report or args.plot:
        report = recall_report(args.out, split.annotations)
        overall = report["overall"]
        print(f"recall@0.5 {overall['recall@0.5']}, recall@0.7 {overall['recall@0.7']}, "
              f"mabo {overall['mabo']} over {overall['num_gt']} objects")
        if args.report:
            write_report(report, args.report)
        if args.plot:
            plot_recall_curve(report, args.plot)
    clear(stage)  # last: both tools delete every output of a stage that stopped short, the merged file included


if __name__ == "__main__":
    main()
