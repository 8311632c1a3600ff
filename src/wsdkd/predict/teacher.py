"""The teacher's part of ``wsdkd predict``: its whole test-time path on one file, proposals included.

Per image, as the pipeline does it for a split: proposals from the source the teacher was trained with
(``make_source`` + ``fit_proposals``, the params stored in the teacher file), the image squashed to
``cache_scale`` and normalised, the boxes scaled to that input (``boxes_to_input``), then
p = image_scores(two_stream_scores(M^c, M^d)) with recycled rows masked out, as ``run_teacher`` computes it.
The image is decoded once, by OpenCV as the proposals stage does; its RGB pixels can differ from the training
loader's PIL decode by JPEG rounding only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..data.images import square_input
from ..pipeline.errors import UserError
from ..proposals.boxes import fit_proposals
from ..proposals.extract import read_bgr
from ..proposals.sources import ProposalSource, make_source
from ..teacher.inputs import boxes_to_input
from ..teacher.wsddn import TWDet, image_scores, load_teacher, two_stream_scores
from .files import Predictor

TeacherInputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # pixels, boxes, prior, valid


class TeacherImageFiles(Dataset):
    """``(index, (pixels, boxes in input pixels, prior, valid) or None, error or None)`` per file.

    The proposal source is built on first use in each process, so DataLoader workers each get their own.
    """

    def __init__(self, paths: Sequence[Path], proposals_cfg: dict, size: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.paths, self.cfg, self.size = list(paths), proposals_cfg, size
        self.num_proposals = int(proposals_cfg["num_proposals"])
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self._source: ProposalSource | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, TeacherInputs | None, str | None]:
        try:
            bgr = read_bgr(self.paths[index])
        except UserError as exc:
            return index, None, str(exc)
        if self._source is None:
            self._source = make_source(self.cfg)
        height, width = bgr.shape[:2]
        # The image id only matters to external detections, which predict refuses (see TeacherPredictor).
        boxes, prior, num_real = fit_proposals(*self._source(bgr, index), width, height, self.num_proposals)
        pixels = square_input(Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])), self.size, self.mean, self.std)
        input_boxes = boxes_to_input(torch.from_numpy(boxes)[None], torch.tensor([float(width)]),
                                     torch.tensor([float(height)]), self.size)[0]
        valid = torch.arange(self.num_proposals) < num_real
        return index, (pixels, input_boxes, torch.from_numpy(prior), valid), None


class TeacherPredictor(Predictor):
    """A trained T-WDet at its test scale (``cache_scale``) on the proposals it was trained with."""

    model: TWDet

    def dataset(self, paths: Sequence[Path]) -> Dataset:
        return TeacherImageFiles(paths, self.meta["proposals"], self.meta["params"]["cache_scale"], self.model.mean,
                                 self.model.std)

    def probabilities(self, inputs: TeacherInputs, device: torch.device) -> torch.Tensor:
        pixels, boxes, prior, valid = (t.to(device, non_blocking=True) for t in inputs)
        mc, md = self.model(pixels, boxes, prior)
        return image_scores(two_stream_scores(mc.float(), md.float(), valid=valid))


def load_teacher_predictor(path: str | Path) -> TeacherPredictor:
    """The teacher file's predictor; one UserError line when the file cannot predict on new images."""
    try:
        model, info = load_teacher(path)
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:  # missing keys, weights of another shape
        raise UserError(f"{path}: damaged or incompatible teacher model file ({type(exc).__name__})") from None
    proposals = info.get("proposals")
    if not proposals:
        raise UserError(f"{path}: this teacher file does not record its proposals params (written before "
                        f"predict supported teachers); re-run the train_teacher stage to predict with it")
    if proposals["source"] == "external":
        raise UserError(f"{path}: this teacher was trained on external detections, which exist only for the "
                        f"dataset's images; predict needs a proposal source that runs on any image")
    make_source(proposals)  # a missing structured-edges model fails here, once, not on every image
    return TeacherPredictor(model, info)
