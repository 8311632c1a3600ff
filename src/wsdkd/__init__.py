"""Multi-label image classification by knowledge distillation from weakly-supervised detection.

Liu et al., "Multi-Label Image Classification via Knowledge Distillation from Weakly-Supervised Detection",
ACM MM 2018. The stage scripts under ``stages/`` are thin wrappers over this package.
"""

__version__ = "0.1.0"
