"""Training machinery shared by every trainer: the resumable epoch loop with its dvclive curves (and their figure), checkpoints,
devices and AMP, several GPUs (DDP), memory estimates and micro-batches under a cap, multi-split row indexing, self-describing model files, and what every stage
script shares (``stage_cli``).

Knows no method: may import ``evaluate``, ``data``, ``pipeline``.
"""
