"""`bigk emulator` on its own: prints the URL and a kubeconfig that clients can use."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_bigk_emulator_serves_the_cluster_file(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bigk.cli.main", "emulator", "--cluster", "jobspecs/cluster.yaml", "--port", "0",
         "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = ""
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("emulated cluster: "):
                url = line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        nodes = httpx.get(f"{url}/api/v1/nodes").json()["items"]
        assert len(nodes) == 8  # 4 cpu + 2 a100 + 2 t4 in jobspecs/cluster.yaml
        assert url in kubeconfig.read_text()
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_bigk_emulator_reports_a_bad_cluster_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("pools:\n  - name: cpu\n    count: -1\n    cpu: '4'\n    memory: 8Gi\n")
    result = subprocess.run([sys.executable, "-m", "bigk.cli.main", "emulator", "--cluster", str(bad)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {bad}: pools.0.count")
    assert len(result.stderr.strip().splitlines()) == 1
