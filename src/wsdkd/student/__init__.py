"""S-Cls, the student (DAG stage ``train_student``, paper Eq. 10): the classifier, its hard-label BCE, its
training without distillation ("S-Cls w/o") and its inference over a split.

May import: ``backbones``, ``engine``, ``evaluate``, ``data``, ``pipeline``; never ``teacher``.
"""
