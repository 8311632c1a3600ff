"""NMS selection of the distilled proposals (Eq. 4) on crafted boxes."""

from __future__ import annotations

import numpy as np

from wsdkd.teacher.selection import select_proposals

# A and B overlap at IoU 90/110 = 0.82; A and C at 50/150 = 0.33; D is far from everything.
BOXES = np.array([[0, 0, 10, 10],    # A
                  [1, 0, 11, 10],    # B
                  [5, 0, 15, 10],    # C
                  [50, 50, 60, 60]],  # D
                 np.float32)
# B and C overlap at 60/140 = 0.43.
SCORES = np.array([0.9, 0.8, 0.7, 0.6], np.float32)


def test_overlapping_pairs_suppressed_at_04_kept_below():
    rows, count = select_proposals(BOXES, SCORES, 4, iou=0.4, count=3)
    assert rows.tolist() == [0, 2, 3] and count == 3  # B goes (0.82 with A); C stays (0.33 < 0.4)
    rows, count = select_proposals(BOXES, SCORES, 4, iou=0.3, count=3)
    assert rows.tolist() == [0, 3, 0] and count == 2  # at 0.3, C goes too; the list is recycled
    rows, count = select_proposals(BOXES, SCORES, 4, iou=0.9, count=4)
    assert rows.tolist() == [0, 1, 2, 3] and count == 4  # nothing overlaps that much


def test_order_follows_objectness():
    rows, _ = select_proposals(BOXES, SCORES[::-1].copy(), 4, iou=0.4, count=3)
    assert rows.tolist() == [3, 2, 0]  # D, C, then B goes (0.43 with C) and A stays (0.33 with C)


def test_recycling_to_exactly_count():
    rows, count = select_proposals(BOXES, SCORES, 4, iou=0.4, count=7)
    assert rows.tolist() == [0, 2, 3, 0, 2, 3, 0] and count == 3


def test_truncation_and_recycled_input_rows():
    rows, count = select_proposals(BOXES, SCORES, 4, iou=0.4, count=2)
    assert rows.tolist() == [0, 2] and count == 2
    # Rows past num_real are the proposals store's copies: never selected.
    rows, count = select_proposals(BOXES, np.array([0.1, 0.2, 0.3, 0.9], np.float32), 3, iou=0.4, count=3)
    assert 3 not in rows.tolist() and count == 2


def test_image_without_proposals():
    rows, count = select_proposals(np.zeros((4, 4), np.float32), np.zeros(4, np.float32), 0, iou=0.4, count=5)
    assert rows.tolist() == [0] * 5 and count == 0
