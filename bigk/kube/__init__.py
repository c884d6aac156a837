"""The Kubernetes backend: bigk as a secondary scheduler on any API server (a real cluster or the emulator).

Modules, one job each:
  client     connect: --kube-server URL, kubeconfig, or in-cluster service account
  translate  V1Node/V1Pod -> bigk's Node/Pod (and which pods are bigk's to place)
  informer   list + watch with resourceVersion, bookmarks, 410 re-list, backoff
  cache      thread-safe nodes and pods, with assumed binds
  gangs      Spark applications as Gangs; the Snapshot the core consumes
  binder     pods/binding with the assigned GPUs, evictions, races and retries
  events     Scheduled / FailedScheduling / Preempted events, Unschedulable condition
  leader     Lease-based leader election
  loop       SchedulerLoop: cache -> core -> API, in a thread, only while leading
  submit     SparkSubmitter: spark-submit in cluster mode; follow, find and kill drivers
  retry      what is worth retrying, exponential backoff with jitter
"""
