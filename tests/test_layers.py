"""The import layers of docs/architecture.md hold: nothing imports upward, edges stay apart, no import loops.

The contracts live in `.importlinter` at the repository root; this runs the same check as `lint-imports`, so the
README's test command (and CI) fails on the first import that breaks a layer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                               "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_a_broken_layer_is_reported(tmp_path: Path) -> None:
    """The check can fail: a contract that forbids what bigk does (cluster importing the scheduler's edge, kube)."""
    config = tmp_path / "contracts.ini"
    config.write_text(
        "[importlinter]\nroot_package = bigk\n\n"
        "[importlinter:contract:upside-down]\nname = upside down\ntype = layers\n"
        "layers =\n    bigk.cluster\n    bigk.kube\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                               "sys.exit(lint_imports_command())", "--no-cache", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode != 0
    assert "bigk.kube is not allowed to import bigk.cluster" in proc.stdout
