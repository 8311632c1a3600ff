# The pipeline's stages are defined once, in dvc.yaml; this file builds one Snakemake rule per DVC stage
# (read through DVC's own parser), so `snakemake` and `dvc repro` run the same DAG on the same changes.
#   snakemake --cores 8 reports/coco_metrics.json
import sys
from pathlib import Path

from wsdkd.pipeline.config import load_params
from wsdkd.pipeline.dag import read_stages, record_in_dvc_lock, snakemake_inputs, tracked_params_json
from wsdkd.pipeline.errors import UserError
from wsdkd.pipeline.workspace_lock import WorkspaceLock

load_params(Path(workflow.basedir) / "params.yaml")  # stop on a bad param before any job starts

STAGES = read_stages(workflow.basedir)


rule all:
    default_target: True
    input: [out for spec in STAGES for out in spec.outs]


for spec in STAGES:

    rule:
        name: spec.rule_name
        input: snakemake_inputs(spec, STAGES, workflow.basedir)
        output: [directory(out) if out in spec.directories else out for out in spec.outs]
        # Values, not closures: the loop variable would otherwise be read late, after the loop ended.
        params:
            cmd=spec.cmd,
            tracked=tracked_params_json(spec),
        threads: spec.threads
        resources: **spec.resources
        shell: "{params.cmd}"


# Held from the first job to the last: `dvc repro` or a second snakemake here is refused, not interleaved.
WORKSPACE = WorkspaceLock(workflow.basedir)


onstart:
    try:
        WORKSPACE.acquire()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _record_in_dvc_lock():
    """Record what Snakemake built in dvc.lock, so that `dvc status` and `dvc repro` agree afterwards."""
    WORKSPACE.release()  # `dvc commit` takes the same lock
    # --touch builds nothing: its outputs may be stale for the current params, which dvc.lock must not claim.
    if not workflow.touch:
        record_in_dvc_lock(STAGES, workflow.basedir)


onsuccess:
    _record_in_dvc_lock()
