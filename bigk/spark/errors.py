"""The one error for a run that could not be handed to Spark on the cluster (spark-submit or the direct driver pod)."""

from __future__ import annotations

from bigk.errors import BigkError


class SubmitError(BigkError):
    """A run could not be handed to the cluster: spark-submit failed, or the driver pod never appeared."""
