"""Leader election on a coordination.k8s.io/v1 Lease, so two bigk replicas never both bind.

The algorithm is client-go's: a candidate takes the Lease when it is missing,
released (no holder) or expired; it decides expiry by its *own* clock, measured
from when it last saw the holder's record change, so clock skew between
replicas does not matter. Every write carries the resourceVersion it read, so two
candidates cannot both win. The leader renews every `retry_period_s` and stops
calling itself leader as soon as it has failed to renew for `renew_deadline_s`
(before the lease can expire for others). On a graceful stop it releases the
Lease, and a follower takes over at its next retry instead of waiting out the
lease duration.

(The client's own `leaderelection` module is not used: it is tied to the global
default client configuration, blocks forever in `run()`, and never releases.)
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.kube.retry import status_of

log = logging.getLogger(__name__)


def default_identity() -> str:
    """Unique per process: the pod name (hostname in Kubernetes) plus a random suffix."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class IdentityClaim:
    """A replica's identity that outlives a restart: kept in its state folder, held with a file lock.

    A restarted replica finds its own unexpired Lease and takes it back at once, instead of
    waiting the lease duration out as a stranger would. A second process on the same state
    folder cannot take the lock and gets a fresh identity, so two live replicas never share one.
    """

    def __init__(self, state_dir: Path) -> None:
        self._fd: int | None = None
        self.identity = default_identity()
        self.stable = False
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(state_dir / "leader-identity.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("event=identity_unstable reason=%r", str(exc))
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another live process uses this state folder
            os.close(fd)
            log.info("event=identity_fresh reason=state_dir_in_use identity=%s", self.identity)
            return
        self._fd = fd
        path = state_dir / "leader-identity"
        try:
            kept = path.read_text(encoding="utf-8").strip()
        except OSError:
            kept = ""
        if kept and len(kept) <= 128 and kept.isprintable():
            self.identity = kept
        else:
            path.write_text(self.identity + "\n", encoding="utf-8")
        self.stable = True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def _micro(ts: float) -> datetime:
    """A MicroTime; never a whole second, as Go's RFC3339Micro parser needs six fractional digits."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt if dt.microsecond else dt.replace(microsecond=1)


class LeaderElector:
    """Campaigns for a Lease in a background thread; `is_leader` says whether we may act now."""

    def __init__(self, api: client.ApiClient | None, *, name: str = "bigk-scheduler", namespace: str = "default",
                 identity: str | None = None, lease_duration_s: float = 15.0, renew_deadline_s: float = 10.0,
                 retry_period_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 on_started_leading: Callable[[], None] | None = None,
                 on_stopped_leading: Callable[[], None] | None = None, coord: Any = None) -> None:
        if not retry_period_s < renew_deadline_s < lease_duration_s:
            raise ValueError("need retry_period_s < renew_deadline_s < lease_duration_s")
        # `coord`: another home for the Lease with the same three calls (the state database, or a test's stand-in)
        self._coord = coord if coord is not None else client.CoordinationV1Api(api)
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_period_s = retry_period_s
        self._clock = clock
        self._wall = wall_clock
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0  # our clock when `_observed` last changed
        self._last_renew = -1e18  # our clock at our last successful acquire/renew
        self._leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.transitions = 0

    # ---- public view ----------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """True only while our last renewal is younger than the renew deadline."""
        with self._lock:
            return self._leading and self._clock() - self._last_renew < self.renew_deadline_s

    @property
    def leader(self) -> str:
        """The holder we last observed ("" when none)."""
        with self._lock:
            return self._observed[0] if self._observed else ""

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self._run, name=f"leader-{self.identity}", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True, timeout: float = 5.0) -> None:
        """Stop campaigning; a leader hands the Lease back so a follower need not wait for expiry."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if release and self._leading:
            self.release()
        else:
            self._set_leading(False)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception:
                log.exception("event=leader_error identity=%s", self.identity)
            if self._leading and self._clock() - self._last_renew >= self.renew_deadline_s:
                log.warning("event=leader_lost identity=%s reason=renew_deadline", self.identity)
                self._set_leading(False)
            self._stop.wait(self.retry_period_s)

    # ---- one step -------------------------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        """Acquire or renew once; True if we hold the Lease afterwards."""
        now_wall = self._wall()
        try:
            lease = self._coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if status_of(exc) != 404:
                log.info("event=leader_read_failed identity=%s status=%s", self.identity, status_of(exc))
                return self._renew_failed()
            return self._create(now_wall)
        except Exception as exc:
            log.info("event=leader_read_failed identity=%s error=%s", self.identity, type(exc).__name__)
            return self._renew_failed()

        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        record = (holder, str(spec.renew_time))
        now = self._clock()
        with self._lock:
            if record != self._observed:
                self._observed, self._observed_at = record, now
            observed_at = self._observed_at
        duration = float(spec.lease_duration_seconds or self.lease_duration_s)
        if holder and holder != self.identity and now < observed_at + duration:
            self._set_leading(False)
            return False
        transitions = int(spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        spec = client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=int(self.lease_duration_s),
            acquire_time=spec.acquire_time if holder == self.identity and spec.acquire_time else _micro(now_wall),
            renew_time=_micro(now_wall),
            lease_transitions=transitions,
        )
        lease.spec = spec
        try:
            updated = self._coord.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            log.info("event=leader_update_failed identity=%s status=%s", self.identity, status_of(exc))
            if status_of(exc) == 409:
                # The Lease moved on since we read it: someone else may hold it now. Stop acting at once;
                # if it was only our own earlier write, the next round finds us holder again.
                self._set_leading(False)
                return False
            return self._renew_failed()
        except Exception as exc:
            log.info("event=leader_update_failed identity=%s error=%s", self.identity, type(exc).__name__)
            return self._renew_failed()
        return self._won(updated)

    def _create(self, now_wall: float) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=client.V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=int(self.lease_duration_s),
                                    acquire_time=_micro(now_wall), renew_time=_micro(now_wall), lease_transitions=0),
        )
        try:
            created = self._coord.create_namespaced_lease(self.namespace, body)
        except Exception as exc:
            log.info("event=leader_create_failed identity=%s status=%s", self.identity, status_of(exc))
            return self._renew_failed()
        return self._won(created)

    def _won(self, lease: client.V1Lease) -> bool:
        spec = lease.spec or client.V1LeaseSpec()
        with self._lock:
            self._observed = (spec.holder_identity or "", str(spec.renew_time))
            self._observed_at = self._last_renew = self._clock()
        self._set_leading(True)
        return True

    def _renew_failed(self) -> bool:
        """A failed write keeps leadership only until the renew deadline passes."""
        return self.is_leader

    def release(self) -> bool:
        """Give the Lease up (holder cleared), if we still hold it; we stop acting as leader first."""
        self._set_leading(False)
        try:
            lease = self._coord.read_namespaced_lease(self.name, self.namespace)
            spec = lease.spec or client.V1LeaseSpec()
            if spec.holder_identity != self.identity:
                return False
            now = _micro(self._wall())
            lease.spec = client.V1LeaseSpec(holder_identity=None, lease_duration_seconds=1, acquire_time=now,
                                            renew_time=now, lease_transitions=spec.lease_transitions)
            self._coord.replace_namespaced_lease(self.name, self.namespace, lease)
        except Exception as exc:
            log.warning("event=leader_release_failed identity=%s status=%s", self.identity, status_of(exc))
            return False
        log.info("event=leader_released identity=%s lease=%s/%s", self.identity, self.namespace, self.name)
        return True

    def _set_leading(self, leading: bool) -> None:
        with self._lock:
            changed = leading != self._leading
            self._leading = leading
        if not changed:
            return
        self.transitions += 1
        log.info("event=%s identity=%s lease=%s/%s", "leader_elected" if leading else "leader_stepped_down",
                 self.identity, self.namespace, self.name)
        callback = self._on_started if leading else self._on_stopped
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("event=leader_callback_error identity=%s", self.identity)
