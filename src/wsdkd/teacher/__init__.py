"""T-WDet, the teacher (DAG stages ``train_teacher``, ``cache_teacher``, ``evaluate_teacher``; paper Eq. 2 and
Eq. 4, METHOD.md sections 2-3): the WSDDN model, what it sees of an image, its training (with the frozen
backbone's feature bank), inference, the HDF5 cache, the proposal selection of stage 1, what distillation reads
of it, and its evaluation as a detector.

May import: ``proposals``, ``backbones``, ``engine``, ``evaluate``, ``data``, ``pipeline``; never ``student``.
"""
