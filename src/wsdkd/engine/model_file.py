"""Self-describing model files: weights plus what they are, refused with one line when they are not ours."""

from __future__ import annotations

from pathlib import Path

import torch

from ..pipeline.errors import DamagedFile, UserError


def save_model_file(path: str | Path, kind: str, version: int, **fields) -> None:
    """``fields`` (state_dict included) tagged with the file's ``kind`` and layout ``version``."""
    torch.save({"format": kind, "format_version": version, **fields}, path)


def read_model_file(path: str | Path, kind: str, version: int, missing_hint: str = "",
                    class_names: list[str] | None = None) -> dict:
    """The file's contents; UserError when it is absent, not a checkpoint, another kind, or a newer layout.

    With ``class_names`` (the dataset's), a file made for other classes is a DamagedFile: a stale upstream output.
    """
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UserError(f"{path}: model file not found{f' ({missing_hint})' if missing_hint else ''}") from None
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise DamagedFile(path, f"not a model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != kind:
        raise DamagedFile(path, f"not a {kind.replace('-', ' ')} model file")
    if blob["format_version"] > version:
        raise UserError(f"{path}: {kind} file format {blob['format_version']} is newer than this wsdkd reads "
                        f"({version}); upgrade wsdkd")
    if class_names is not None and list(blob["class_names"]) != list(class_names):
        made_for = blob["class_names"]
        listed = ", ".join(made_for[:5]) + (", ..." if len(made_for) > 5 else "")
        raise DamagedFile(path, f"made for {len(made_for)} other classes ({listed}), expected the dataset's "
                                f"{len(class_names)} classes")
    return blob


def model_file_kind(path: str | Path) -> str | None:
    """The kind a model file declares, or None for anything else; memory-mapped, so the weights stay unread."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # missing, not a checkpoint, not zip-based: the kind's own loader explains it properly
        return None
    return blob.get("format") if isinstance(blob, dict) else None


def weight_mismatches(model: torch.nn.Module, state: dict) -> list[str]:
    """How ``state`` (a state_dict) fails to fit ``model``: missing, unexpected or differently shaped tensors."""
    expected = model.state_dict()
    problems = [f"{name} missing" for name in expected if name not in state]
    problems += [f"{name} unexpected" for name in state if name not in expected]
    problems += [f"{name} has shape {tuple(state[name].shape)}, expected {tuple(value.shape)}"
                 for name, value in expected.items() if name in state and state[name].shape != value.shape]
    return problems


def load_weights(model: torch.nn.Module, state: dict, path: str | Path) -> None:
    """Load ``state`` into ``model``, or raise DamagedFile naming ``path`` and the first mismatches."""
    problems = weight_mismatches(model, state)
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise DamagedFile(path, f"weights do not fit the model the file describes: {'; '.join(problems[:3])}{more}")
    model.load_state_dict(state)
