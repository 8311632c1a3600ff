"""Region proposals (METHOD.md section 1): sources, sharded extraction, the HDF5 store and its recall report.

DAG stage ``proposals``. Later stages need only :class:`ProposalReader`. May import: ``pipeline``.
"""

from .store import ProposalReader

__all__ = ["ProposalReader"]
