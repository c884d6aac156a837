"""Label, annotation and name constants that every part of bigk agrees on.

The spec renderer writes them on Spark pods, the emulator and the Kubernetes
backend read them back, and the scheduler core never sees raw strings.
"""

from __future__ import annotations

SCHEDULER_NAME = "bigk"

# Spark's own pod labels
SPARK_APP_SELECTOR = "spark-app-selector"  # the gang id
SPARK_ROLE = "spark-role"  # "driver" | "executor"
SPARK_EXEC_ID = "spark-exec-id"
SPARK_APP_NAME = "spark-app-name"

# Taints the node lifecycle controller puts on and takes off with a node's conditions and cordon
# (TaintNodesByCondition): they say what a node is now, not what it can ever hold.
CONDITION_TAINT_KEYS = frozenset({
    "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/memory-pressure", "node.kubernetes.io/disk-pressure", "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/network-unavailable",
})

# bigk labels (selectable)
JOB_LABEL = "bigk.io/job"
RUN_LABEL = "bigk.io/run"
QUEUE_LABEL = "bigk.io/queue"

# bigk annotations (scheduling hints read by the core)
PRIORITY_ANNOTATION = "bigk.io/priority"  # integer; higher wins
MIN_EXECUTORS_ANNOTATION = "bigk.io/min-executors"  # gang minimum
MAX_EXECUTORS_ANNOTATION = "bigk.io/max-executors"
GPU_MILLI_ANNOTATION = "bigk.io/gpu-milli"  # per GPU share when fractional (1..999), else 1000
GPU_MEMORY_ANNOTATION = "bigk.io/gpu-memory-mib"  # GPU memory a fractional pod needs
GPU_MODELS_ANNOTATION = "bigk.io/gpu-models"  # "A100|H100"
POOLS_ANNOTATION = "bigk.io/preferred-pools"  # "gpu-a100,gpu-t4"
EXPECTED_DURATION_ANNOTATION = "bigk.io/expected-duration-seconds"  # emulator/simulator hint
ASSIGNED_GPUS_ANNOTATION = "bigk.io/assigned-gpus"  # written at bind time: "0,1" GPU indices
# On the driver: one executor's request as JSON (see bigk.kube.gangs.encode_executor_request), so the
# gang's executors can be reserved before the driver creates them.
EXECUTOR_REQUEST_ANNOTATION = "bigk.io/executor-request"

# Node annotation carrying live GPU readings, written by `bigk agent` (NVML) or the
# emulator's simulated GPUs. Value: JSON list of objects with keys
# index, uuid, model, memory_total_mib, memory_free_mib, utilization_pct,
# temperature_c, healthy (bool), observed_at (unix seconds).
GPU_READINGS_ANNOTATION = "bigk.io/gpu-readings"

# Written by the scheduler on a WaitForFirstConsumer PersistentVolumeClaim before it binds the pod:
# the node the provisioner must create the volume for (the same annotation kube-scheduler writes).
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
