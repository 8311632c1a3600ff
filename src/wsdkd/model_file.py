"""Self-describing model files: weights plus what they are, refused with one line when they are not ours."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import UserError


def save_model_file(path: str | Path, kind: str, version: int, **fields) -> None:
    """``fields`` (state_dict included) tagged with the file's ``kind`` and layout ``version``."""
    torch.save({"format": kind, "format_version": version, **fields}, path)


def read_model_file(path: str | Path, kind: str, version: int, missing_hint: str = "") -> dict:
    """The file's contents; UserError when it is absent, not a checkpoint, another kind, or a newer layout."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UserError(f"{path}: model file not found{f' ({missing_hint})' if missing_hint else ''}") from None
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise UserError(f"{path}: not a model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != kind:
        raise UserError(f"{path}: not a {kind.replace('-', ' ')} model file")
    if blob["format_version"] > version:
        raise UserError(f"{path}: {kind} file format {blob['format_version']} is newer than this wsdkd reads "
                        f"({version}); upgrade wsdkd")
    return blob


def model_file_kind(path: str | Path) -> str | None:
    """The kind a model file declares, or None for anything else; memory-mapped, so the weights stay unread."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # missing, not a checkpoint, not zip-based: the kind's own loader explains it properly
        return None
    return blob.get("format") if isinstance(blob, dict) else None
