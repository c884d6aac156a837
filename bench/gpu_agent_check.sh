#!/usr/bin/env bash
# Real-GPU check of `bigk agent`: read every GPU through NVML once (--once --dry-run,
# nothing is written to any cluster), print the readings, and compare them with
# nvidia-smi's own view (GPU count, UUIDs, total memory, and that free memory and
# temperature are plausible). Exits non-zero on any mismatch.
#
#   bash bench/gpu_agent_check.sh            # on a machine with an NVIDIA driver
#   OUT=/some/dir bash bench/gpu_agent_check.sh   # also keep the JSON there
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir="${OUT:-$(mktemp -d)}"
mkdir -p "$out_dir"

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_agent_check: nvidia-smi not found; run this on a GPU node with the NVIDIA driver" >&2
  exit 2
fi
nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.free,utilization.gpu,temperature.gpu \
  --format=csv,noheader,nounits > "$out_dir/nvidia_smi.csv"
echo "== nvidia-smi"; cat "$out_dir/nvidia_smi.csv"

start=$(date +%s.%N)
python3 -m bigk.cli.main agent --node "${NODE_NAME:-$(hostname)}" --once --dry-run --metrics-port 0 \
  > "$out_dir/readings.json"
end=$(date +%s.%N)
echo "== bigk agent --once --dry-run ($(python3 -c "print(f'{$end-$start:.2f}')") s incl. Python start)"
cat "$out_dir/readings.json"

python3 - "$out_dir" <<'EOF'
import csv, json, sys
from pathlib import Path

out = Path(sys.argv[1])
readings = json.loads((out / "readings.json").read_text())
smi = [[c.strip() for c in row] for row in csv.reader((out / "nvidia_smi.csv").read_text().splitlines())]
problems = []
if len(readings) != len(smi):
    problems.append(f"bigk read {len(readings)} GPUs, nvidia-smi lists {len(smi)}")
for r, s in zip(sorted(readings, key=lambda r: r["index"]), sorted(smi, key=lambda s: int(s[0]))):
    idx = r["index"]
    if r["uuid"] != s[1]:
        problems.append(f"GPU {idx}: uuid {r['uuid']} != nvidia-smi {s[1]}")
    if r["model"] != s[2]:
        problems.append(f"GPU {idx}: model {r['model']!r} != nvidia-smi {s[2]!r}")
    if r["memory_total_mib"] is None or abs(r["memory_total_mib"] - int(s[3])) > max(16, int(s[3]) // 100):
        problems.append(f"GPU {idx}: memory_total_mib {r['memory_total_mib']} != nvidia-smi {s[3]}")
    if r["memory_free_mib"] is None or not 0 <= r["memory_free_mib"] <= r["memory_total_mib"]:
        problems.append(f"GPU {idx}: implausible memory_free_mib {r['memory_free_mib']}")
    if r["temperature_c"] is None or not 0 < r["temperature_c"] < 120:
        problems.append(f"GPU {idx}: implausible temperature_c {r['temperature_c']}")
    if r["utilization_pct"] is None or not 0 <= r["utilization_pct"] <= 100:
        problems.append(f"GPU {idx}: implausible utilization_pct {r['utilization_pct']}")
    if not r["healthy"]:
        print(f"note: GPU {idx} judged unhealthy: {r.get('health_reasons')}")
summary = {"gpus": len(readings), "problems": problems,
           "healthy": sum(1 for r in readings if r["healthy"])}
(out / "gpu_agent_check.json").write_text(json.dumps(summary, indent=2))
print("== result", json.dumps(summary))
sys.exit(1 if problems else 0)
EOF
