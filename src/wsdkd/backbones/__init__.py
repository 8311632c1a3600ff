"""Backbones split at their stride-16 map, with ImageNet weights read from local files only, and taps that
read intermediate maps during one ordinary forward pass. Shared by the teacher and the student.

May import: ``pipeline``.
"""
