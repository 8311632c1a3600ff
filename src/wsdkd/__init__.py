"""Multi-label image classification by knowledge distillation from weakly-supervised detection.

Liu et al., "Multi-Label Image Classification via Knowledge Distillation from Weakly-Supervised Detection",
ACM MM 2018. The stage scripts under ``stages/`` are thin wrappers over this package.
"""

import os

# How long idle OpenMP threads spin before they sleep; read when torch loads, so set before it is imported (an
# explicit user setting of either variable wins). GNU OpenMP's own spin (300,000 turns) collapses when cores are
# shared: two 2-thread trainings side by side on 2 cores took 152 s per epoch each, 35 s when threads yield at
# once (OMP_WAIT_POLICY=PASSIVE). Yielding at once costs a lone run 1.55x (29 s per epoch against 19). 1,000
# turns, GNU OpenMP's own figure for oversubscribed cores, keeps most of both: 24 s alone, 36 s paired
# (benchmarks/bench_wait_policy.py). Other OpenMP runtimes (KMP_BLOCKTIME) keep yielding at once, as before.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "1000"
    os.environ.setdefault("KMP_BLOCKTIME", "0")

__version__ = "0.1.0"
