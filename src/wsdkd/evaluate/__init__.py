"""Scoring predictions (DAG stage ``evaluate``, METHOD.md section 7): the metrics (AP, F1-C/F1-O, top-k,
tuned thresholds), the predictions file every model stage writes, the headline numbers and per-class tables, the few
numbers DVC compares across runs (``compared``), the curves as plot data,
the convergence of validation curves, and when a difference between table rows counts as significant.

Works on scores only, never on a network. May import: ``data``, ``pipeline``.
"""
