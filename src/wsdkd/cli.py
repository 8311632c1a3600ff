"""The ``wsdkd`` command: ``predict`` labels images with a trained student (or teacher), ``export`` writes a
student for other runtimes, ``table`` reproduces one of the paper's tables, ``convergence`` checks that a longer
run adds no mAP, ``compare-rows`` sets two folders of kept table rows side by side, ``preset`` writes params.yaml
for one of the setups in workflow/presets/ (the paper's COCO 2014 or NUS-WIDE).

Exit status: 0 when everything succeeded, 1 when some images could not be read (the others are still
predicted), 2 for a usage error or a model file that cannot be used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Iterator, TextIO

import yaml
from tqdm import tqdm

from .engine.device import resolve_device
from .engine.model_file import model_file_kind
from .evaluate import convergence
from .paper import rerun, row_pool, tables
from .pipeline import presets
from .pipeline.atomic import atomic_path, write_text_atomic
from .pipeline.config import load_params
from .pipeline.errors import UserError, exits_cleanly
from .predict import export, files, formats
from .predict.teacher import load_teacher_predictor
from .teacher.wsddn import TEACHER_FORMAT

EXIT_OK, EXIT_SOME_FAILED = 0, 1


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsdkd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("predict", help="label images with a trained student or teacher",
                            description="Label images with a trained student or teacher model file "
                                        "(models/*/model.pt); a teacher makes its own region proposals.")
    p.add_argument("images", nargs="+", metavar="IMAGES",
                   help="image files, folders (searched recursively) and globs (quote them; ** recurses)")
    p.add_argument("--model", required=True, type=Path,
                   help="a model file written by train_student or train_teacher")
    p.add_argument("--threshold", type=float, default=None,
                   help="a class is a label when its score is strictly above this (default: the model file's "
                        f"threshold, else {files.DEFAULT_THRESHOLD})")
    p.add_argument("--top-k", type=_non_negative_int, default=3, help="best classes listed per image (default 3)")
    p.add_argument("--format", choices=formats.FORMATS, default=None,
                   help="jsonl: one JSON object per image; csv: one row per image with a score column per "
                        "class; table: aligned text (default: table on a terminal, else jsonl)")
    p.add_argument("--out", type=Path, default=None,
                   help="write here instead of stdout (all or nothing: no partial file if interrupted)")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CUDA (bf16 autocast) when present, else CPU")
    p.add_argument("--workers", type=_non_negative_int, default=0, help="image-decoding worker processes")
    p.set_defaults(run=_predict)

    e = commands.add_parser("export", help="write a student as TorchScript or ONNX", description=export.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True, type=Path, help="a student model file written by train_student")
    e.add_argument("--format", required=True, choices=export.FORMATS)
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--input-size", type=_positive_int, default=None,
                   help="S of the (N, 3, S, S) input (default: the size the student was trained at)")
    e.set_defaults(run=_export)

    t = commands.add_parser("table", help="train the rows of one of the paper's tables and write it",
                            description="Bring the DAG up to the teacher cache (Snakemake), train every row of "
                                        "the table that has not run with these settings, and write "
                                        "reports/tables/NAME.md (ours beside the paper's) and NAME.json.")
    t.add_argument("names", nargs="+", metavar="name",
                   help="tables of --tables (table1 ... table5, seeds); several train their rows together, each "
                        "row once")
    _add_row_options(t, "default: the table's seeds (0 1 2 in workflow/tables.yaml)")
    t.set_defaults(run=_table)

    c = commands.add_parser("convergence", help="does a longer run add mAP? (the plain student and ours)",
                            description="Train the baseline and ours rows of --tables as params.yaml has them and "
                                        "again with convergence.longer times the epochs of both stages (each on "
                                        "its own full schedule), over the seeds, reusing finished rows, and write "
                                        "reports/tables/convergence.md: the test mAP each longer run adds, and "
                                        "whether that is under convergence.longer_max_gain.")
    _add_row_options(c, "default: the seeds of --tables")
    c.set_defaults(run=_convergence)

    r = commands.add_parser("compare-rows", help="two folders of kept table rows side by side (a retrain's change)",
                            description="Match the row records of OLD and NEW (reports/tables/rows/ of two "
                                        "sessions) to the rows and seeds of the named tables by their settings, "
                                        "and print, per row, each seed's value in both, both means ± std and the "
                                        "change of the mean, starred when over twice the pooled std.")
    r.add_argument("old", type=Path)
    r.add_argument("new", type=Path)
    r.add_argument("names", nargs="*", default=["table1", "table3", "table4", "seeds"], metavar="name",
                   help="tables of --tables whose rows to compare (default: table1 table3 table4 seeds)")
    r.add_argument("--params", type=Path, default=Path("params.yaml"))
    r.add_argument("--tables", type=Path, default=Path("workflow/tables.yaml"))
    r.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the tables' seeds")
    r.add_argument("--column", default="mAP", help="a metric of the records (default mAP)")
    r.set_defaults(run=_compare_rows)

    s = commands.add_parser("preset", help="write params.yaml for a setup of workflow/presets/",
                            description="Apply a preset of workflow/presets/ to params.yaml (its comments kept): "
                                        "builtin (the shipped run), coco2014_paper, nuswide_paper, released_code. "
                                        "The result is validated against the schema before it is written.")
    s.add_argument("name", help=f"one of: {', '.join(presets.preset_names())}")
    s.add_argument("--data-root", default=None,
                   help="the dataset's root folder (required by every preset but builtin)")
    s.add_argument("--params", type=Path, default=Path("params.yaml"))
    s.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                   help="then change one setting, e.g. teacher.backbone.weights_path=/models/vgg16-397923af.pth "
                        "(YAML value; repeat for several)")
    s.set_defaults(run=_preset)
    return parser


@contextlib.contextmanager
def _output(out: Path | None) -> Iterator[TextIO]:
    if out is None:
        yield sys.stdout
        return
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as stream:
        yield stream


def _add_row_options(p: argparse.ArgumentParser, seeds_help: str) -> None:
    """What the commands that train table rows share: where the rows and params are, seeds, the upstream DAG."""
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--tables", type=Path, default=Path("workflow/tables.yaml"))
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=seeds_help)
    p.add_argument("--cores", default="all", help="Snakemake's --cores for the upstream stages")
    p.add_argument("--no-upstream", action="store_true", help="use the DAG's outputs as they are (no Snakemake)")
    p.add_argument("--out", type=Path, default=Path("reports/tables"))
    p.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                   help="change a student.* or distill.* setting for every row, e.g. student.epochs=6 (YAML "
                        "value; repeat for several); such rows are trained here, not taken from the DAG")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="train this many rows at once, each process on its share of the cores (on 2 CPU cores, "
                        "2 jobs train 1.45x faster than 1; on a GPU keep 1)")
    p.add_argument("--experiments", type=Path, default=Path("experiments"))


def _load_predictor(path: Path) -> files.Predictor:
    """The predictor of the kind the file declares; anything else goes to the student loader, which explains."""
    if model_file_kind(path) == TEACHER_FORMAT:
        return load_teacher_predictor(path)
    return files.StudentPredictor(*files.load_model(path))


def _predict(args: argparse.Namespace) -> int:
    predictor = _load_predictor(args.model)
    meta = predictor.meta
    device = resolve_device(args.device, "--device")
    paths, problems = files.collect_images(args.images)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    threshold = args.threshold if args.threshold is not None else meta.get("threshold", files.DEFAULT_THRESHOLD)
    fmt = args.format or ("table" if args.out is None and sys.stdout.isatty() else "jsonl")
    # A bar only where someone watches it, and only when there is something to wait for.
    progress = sys.stderr.isatty() and len(paths) > args.batch_size
    unreadable = 0
    with _output(args.out) as stream:
        writer = formats.make_writer(fmt, stream, meta["class_names"], threshold, args.top_k,
                                            [str(p) for p in paths])
        for outcome in files.predict_files(predictor, paths, args.batch_size, device, args.workers, progress):
            if isinstance(outcome, files.ImageFailure):
                unreadable += 1
                tqdm.write(f"error: {outcome.message}", file=sys.stderr)
            else:
                writer.write(str(outcome.path), outcome.scores)
    if problems or unreadable:
        print(f"error: predicted {len(paths) - unreadable} of {len(paths)} images; {unreadable} unreadable, "
              f"{len(problems)} argument(s) matched nothing", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    model, meta = files.load_model(args.model)
    metadata = export.export_student(model, meta, args.format, args.out, args.input_size)
    print(f"wrote {args.out} ({args.format}: {metadata['input']} -> {metadata['output']})", file=sys.stderr)
    return EXIT_OK


def _workspace(args: argparse.Namespace, params: dict, runs: list) -> tables.Workspace:
    """The DAG's folders and the experiments folder; unless --no-upstream, Snakemake brings what ``runs`` reuse
    up to date first."""
    ws = tables.Workspace(Path("data/dataset"), Path("data/teacher_cache"), Path("models/teacher"),
                          {name: Path("models") / folder for name, folder in tables.DAG_FOLDERS.items()},
                          args.experiments, {name: Path("reports") / name for name in ("student_wo", "student_w")},
                          Path("data/student_inputs"), Path("reports/tables/rows"))
    if not args.no_upstream:
        subprocess.run(["snakemake", "--cores", str(args.cores), *map(str, tables.dag_targets(runs, params, ws))],
                       check=True)
    return ws


def _table(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    params = load_params(args.params)
    rows, known = tables.load_tables(args.tables)
    unknown = [name for name in args.names if name not in known]
    if unknown:
        raise UserError(f"{args.tables}: no table {unknown[0]!r} (expected one of {', '.join(known)})")
    base = _with_settings(params, args)
    planned = {name: list(tables.planned_runs(known[name], rows, base, args.tables, args.seeds))
               for name in args.names}
    every_run = [run for runs in planned.values() for run in runs]
    ws = _workspace(args, params, every_run)
    row_pool.train_rows(every_run, params, ws, args.jobs)
    dataset = json.loads((ws.manifest / "classes.json").read_text())["source"]
    for name, runs in planned.items():
        path = tables.write_table(known[name], rows, tables.run_table(runs, params, ws), dataset, args.out)
        print(path.read_text())
    return EXIT_OK


def _with_settings(params: dict, args: argparse.Namespace) -> dict:
    """params.yaml with the tables file's shared settings, then --set, applied to every row."""
    base = tables.comparison_params(params, args.tables)
    return tables.apply_overrides(base, dict(args.set), "--set") if args.set else base


def _convergence(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    params = load_params(args.params)
    base = _with_settings(params, args)
    cfg = params["convergence"]
    rows, _ = tables.load_tables(args.tables)
    names = ("baseline", "ours")
    seeds = args.seeds or tables.file_seeds(args.tables)
    pair = tables.Table("convergence", "", "", ["mAP"], {name: [] for name in names}, seeds)
    longer = convergence.longer_epochs(base, cfg["longer"])
    long_params = tables.apply_overrides(base, longer, "convergence.longer")
    short_runs = list(tables.planned_runs(pair, rows, base, args.tables))
    long_runs = list(tables.planned_runs(pair, rows, long_params, args.tables))
    ws = _workspace(args, params, short_runs + long_runs)
    row_pool.train_rows(short_runs + long_runs, params, ws, args.jobs)
    short, long = tables.run_table(short_runs, params, ws), tables.run_table(long_runs, params, ws)
    verdicts = {name: convergence.longer_verdict([r["mAP"] for r in short[name]], [r["mAP"] for r in long[name]],
                                                 cfg["longer_max_gain"]) for name in names}
    epochs = {name: tuple(convergence.stage_epochs(p, rows[name].model) for p in (base, long_params))
              for name in names}
    text = convergence.longer_markdown(verdicts, {name: rows[name].label for name in names}, epochs, seeds,
                                       cfg["longer_max_gain"])
    write_text_atomic(args.out / "convergence.md", text)
    convergence.write_json(args.out / "convergence.json", {"longer": cfg["longer"], "seeds": seeds,
                                                           "rows": verdicts})
    curves = {}  # every run's validation curve, short and long, in one figure
    for results, which in ((short, 0), (long, 1)):
        for name in names:
            for run in results[name]:
                label = f"{name}, seed {run['seed']}, {epochs[name][which]['student.epochs']} epochs"
                curves[label] = tables.val_curve(run)
    convergence.plot_curves(curves, convergence.tail_report(curves, cfg), args.out / "convergence.png")
    print(text)
    return EXIT_OK


def _compare_rows(args: argparse.Namespace) -> int:
    rows, known = tables.load_tables(args.tables)
    unknown = [name for name in args.names if name not in known]
    if unknown:
        raise UserError(f"{args.tables}: no table {unknown[0]!r} (expected one of {', '.join(known)})")
    for folder in (args.old, args.new):
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder of row records")
    base = tables.comparison_params(load_params(args.params), args.tables)
    runs = rerun.seeded_runs([run for name in args.names
                              for run in tables.planned_runs(known[name], rows, base, args.tables, args.seeds)])
    labels = {row.name: row.label for row, _, _ in runs}
    seeds = sorted({seed for _, seed, _ in runs})
    print(rerun.comparison_markdown(labels, seeds, rerun.matched_runs(args.old, runs, args.column),
                                    rerun.matched_runs(args.new, runs, args.column), args.column), end="")
    return EXIT_OK


def _preset(args: argparse.Namespace) -> int:
    presets.apply_preset(args.name, args.params, args.data_root, dict(args.set))
    print(f"wrote {args.params} (preset {args.name})", file=sys.stderr)
    return EXIT_OK


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
