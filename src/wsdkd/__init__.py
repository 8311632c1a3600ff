"""Multi-label image classification by knowledge distillation from weakly-supervised detection.

Liu et al., "Multi-Label Image Classification via Knowledge Distillation from Weakly-Supervised Detection",
ACM MM 2018. The stage scripts under ``stages/`` are thin wrappers over this package.
"""

import os

# OpenMP threads that spin while waiting collapse when cores are shared (Snakemake jobs side by side, a
# proposal pool beside training): a training step measured 8.7x slower. Yielding threads cost about 15% on an
# otherwise idle machine (0.50 -> 0.58 s per student batch on 2 cores); a dedicated run can set
# OMP_WAIT_POLICY=ACTIVE. Set before torch is imported; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
