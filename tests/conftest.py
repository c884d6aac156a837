"""Fixtures shared by every test package: the real Kubernetes control plane (tests/realk8s.py), and a root
logger put back as it was after each test (commands run in-process, such as `serve` or `agent`, set up
logging for the whole process, as they should in their own)."""

import logging
from collections.abc import Iterator

import pytest

from tests.realk8s import control_plane, real_nodes

__all__ = ["control_plane", "real_nodes"]


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
