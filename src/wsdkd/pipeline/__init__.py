"""The pipeline's machinery, under every step: params and their schema, the one DAG definition read for both
Snakemake and DVC, atomic writes, resumable partial work, damaged-output remakes, the workspace lock, per-image
HDF5 access, the one-line errors users see, progress that suits a terminal or a log file, the
committed reference run's check, the presets of workflow/presets/, and running the DAG's stages
in order with their time, memory and bytes measured (the paper-scale smoke run).

Lowest layer: imports nothing else of wsdkd (and no torch).
"""
