"""The pipeline's machinery, under every step: params and their schema, the one DAG definition read for both
Snakemake and DVC, atomic writes, resumable partial work, damaged-output remakes, the workspace lock, per-image
HDF5 access and the one-line errors users see.

Lowest layer: imports nothing else of wsdkd (and no torch).
"""
