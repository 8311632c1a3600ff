"""RoIAlign as two small matrix products, for stage 1's student on CPU, where torchvision's kernel is slow.

torchvision's ``roi_align`` (``aligned=True``, adaptive sampling) averages, in each of the 7 x 7 bins, a grid of
bilinear samples. Bilinear interpolation is a product of a weight along y and a weight along x, and the sample
grid of a bin is the product of its y positions and its x positions, so the average is separable: with ``Ay``
(7 x H) the mean y-weights of each bin row and ``Ax`` (7 x W) those of each bin column,
``out[c] = Ay @ map[c] @ Ax^T``: the same values up to float rounding, as dense matrix products that run on
every core, forward and backward (torchvision's CPU kernel loops over samples, and its backward scatters them
one by one). ``python benchmarks/bench_student_epochs.py`` shows what it does to a stage-1 epoch.
"""

from __future__ import annotations

import torch


def axis_weights(start: torch.Tensor, length: torch.Tensor, size: int, bins: int) -> torch.Tensor:
    """(..., bins, size): the mean interpolation weight of each map row (or column) over each bin's samples.

    ``start``, ``length`` (...,): the RoI's first coordinate and extent on the map (torchvision's ``aligned``
    convention: already shifted by half a pixel). Samples per bin: ceil(length / bins), evenly spaced; a sample
    more than one pixel outside the map weighs nothing, one inside the last pixel reads the edge, as in
    torchvision's ``bilinear_interpolate``.
    """
    grid = torch.ceil(length / bins).clamp(min=0)
    most = max(int(grid.max().item()) if grid.numel() else 0, 1)
    bin_length = (length / bins)[..., None, None]
    samples = torch.arange(most, dtype=start.dtype, device=start.device)
    position = (start[..., None, None] + torch.arange(bins, dtype=start.dtype, device=start.device)[:, None]
                * bin_length + (samples + 0.5) * bin_length / grid.clamp(min=1)[..., None, None])
    used = (samples < grid[..., None, None]) & (position >= -1.0) & (position <= size)
    position = position.clamp(min=0.0)
    low = position.floor()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    frac = torch.where(at_edge, torch.zeros_like(position), position - low)
    high = torch.where(at_edge, low, low + 1)
    used = used.to(start.dtype)
    weights = torch.zeros(*position.shape, size, dtype=start.dtype, device=start.device)
    weights.scatter_add_(-1, low.long()[..., None], ((1.0 - frac) * used)[..., None])
    weights.scatter_add_(-1, high.long()[..., None], (frac * used)[..., None])
    return weights.sum(-2) / grid.clamp(min=1)[..., None, None]


def pooling_weights(boxes: torch.Tensor, height: int, width: int, output_size: int,
                    spatial_scale: float) -> torch.Tensor:
    """(B, N * output_size^2, H * W): row (n, bin) holds the weight of every map pixel in that bin of RoI n, so
    that the RoIs pooled from a (B, C, H, W) map are this matrix times its (B, H * W, C) transpose."""
    with torch.no_grad():
        scaled = boxes * spatial_scale - 0.5
        ay = axis_weights(scaled[..., 1], scaled[..., 3] - scaled[..., 1], height, output_size)  # (B, N, 7, H)
        ax = axis_weights(scaled[..., 0], scaled[..., 2] - scaled[..., 0], width, output_size)  # (B, N, 7, W)
        return torch.einsum("bnph,bnqw->bnpqhw", ay, ax).reshape(*boxes.shape[:2], -1, height * width).flatten(1, 2)


def separable_roi_align(maps: torch.Tensor, boxes: torch.Tensor, output_size: int,
                        spatial_scale: float) -> torch.Tensor:
    """torchvision's ``roi_align(maps, rois, output_size, spatial_scale, 0, aligned=True)`` for (B, N, 4) boxes
    (x1, y1, x2, y2 in input pixels, N per image) on (B, C, H, W) maps: (B * N, C, output_size, output_size).

    Each image's RoIs are one (N * output_size^2, H * W) matrix of weights (the outer products of ``Ay`` and
    ``Ax``) times its (H * W, C) map: one batched product forward and two backward, dense and multi-threaded.
    The weight matrix grows with N and H * W: meant for the student's small maps, not the teacher's.
    """
    batch, channels, height, width = maps.shape
    rows = boxes.shape[1]
    weights = pooling_weights(boxes.to(maps.dtype), height, width, output_size, spatial_scale)
    pooled = torch.bmm(weights, maps.reshape(batch, channels, height * width).transpose(1, 2))  # (B, N*49, C)
    return (pooled.view(batch, rows, output_size, output_size, channels).permute(0, 1, 4, 2, 3)
            .reshape(batch * rows, channels, output_size, output_size))
