"""Fixtures shared by every test package: the real Kubernetes control plane (tests/realk8s.py)."""

from tests.realk8s import control_plane, real_nodes

__all__ = ["control_plane", "real_nodes"]
