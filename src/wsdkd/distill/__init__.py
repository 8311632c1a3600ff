"""Distillation (DAG stages ``distill_features`` and ``train_distilled``; paper Eq. 3-11, METHOD.md sections
4-6): the losses of both stages and of the compared methods as pure functions, the learnable temperatures,
and the two stage trainers whose settings give every row of Tables 1 and 4.

May import: ``teacher``, ``student`` and everything below them.
"""
