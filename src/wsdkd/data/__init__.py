"""Datasets (DAG stage ``dataset``, METHOD.md sections 8-9): the built-in synthetic one, the COCO 2014 and
NUS-WIDE loaders, the manifest every later stage reads, and images as network inputs.

May import: ``pipeline``.
"""
