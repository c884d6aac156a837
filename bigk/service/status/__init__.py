"""The status page of `bigk serve`: runs, queues, a GPU map and run details, server-rendered, read-only."""

from bigk.service.status.pages import status_router

__all__ = ["status_router"]
