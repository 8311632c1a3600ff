"""Region proposals (METHOD.md section 1): sources, sharded extraction, the HDF5 store and its recall report.

Later stages need only :class:`ProposalReader`.
"""

from .store import ProposalReader

__all__ = ["ProposalReader"]
