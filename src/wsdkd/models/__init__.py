"""Networks: backbones split at their stride-16 map, and the student classifier."""
