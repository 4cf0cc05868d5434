"""Running oracle calls in parallel on Dask, with timeouts and retries.

`OracleRunner` submits one task per configuration to a Dask cluster: a `LocalCluster` of
worker processes by default, or an existing scheduler (`address`, e.g. a cluster made by
dask-jobqueue on an HPC machine). Results are handed to `on_result` as they arrive, so the
caller can store each label the moment it exists; a failed call (exception) or one that
runs past `timeout_s` is handed to `on_failure` and resubmitted up to `retries` times. One
bad configuration never loses the other results. A timed-out task cannot be killed inside
a Dask worker: it is cancelled and its late result, if any, ignored.

`executor="serial"` runs the calls one after the other in this process (debugging, and
platforms without Dask); timeouts are not enforced there.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ase import Atoms

from matforge.active.oracle import Labels, Oracle
from matforge.core.progress import get_logger

log = get_logger(__name__)

Executor = Literal["dask", "serial"]
ResultHandler = Callable[[Hashable, Labels, int], None]
FailureHandler = Callable[[Hashable, str, int, bool], None]


@dataclass
class RunReport:
    labelled: list[Hashable] = field(default_factory=list)
    failed: list[Hashable] = field(default_factory=list)  # after every retry
    attempts: dict[Hashable, int] = field(default_factory=dict)
    errors: dict[Hashable, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def _call(oracle: Oracle, atoms: Atoms) -> Labels:
    return oracle(atoms)


def _describe(error: BaseException) -> str:
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return last[:500]


class OracleRunner:
    """Context manager owning the Dask client (and the local cluster it started)."""

    def __init__(
        self,
        oracle: Oracle,
        *,
        executor: Executor = "dask",
        address: str | None = None,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        timeout_s: float | None = None,
        retries: int = 0,
        poll_s: float = 0.05,
    ) -> None:
        if executor not in ("dask", "serial"):
            raise ValueError(f"executor must be 'dask' or 'serial', got {executor!r}")
        if retries < 0 or n_workers < 1 or (timeout_s is not None and timeout_s <= 0):
            raise ValueError("retries must be >= 0, n_workers >= 1 and timeout_s > 0")
        self.oracle, self.executor, self.address = oracle, executor, address
        self.n_workers, self.threads_per_worker = n_workers, threads_per_worker
        self.timeout_s, self.retries, self.poll_s = timeout_s, retries, poll_s
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> OracleRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> Any:
        if self._client is None and self.executor == "dask":
            try:
                from distributed import Client, LocalCluster
            except ImportError as error:
                raise ImportError(
                    "parallel oracle calls need Dask: pip install 'matforge[active]' "
                    "(or set executor: serial)"
                ) from error
            if self.address:
                self._client = Client(self.address)
            else:
                self._cluster = LocalCluster(
                    n_workers=self.n_workers,
                    threads_per_worker=self.threads_per_worker,
                    processes=True,
                    dashboard_address=None,
                )
                self._client = Client(self._cluster)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def run(
        self,
        jobs: Sequence[tuple[Hashable, Atoms]],
        on_result: ResultHandler,
        on_failure: FailureHandler,
    ) -> RunReport:
        report = RunReport()
        start = time.perf_counter()
        if self.executor == "serial":
            self._run_serial(jobs, on_result, on_failure, report)
        else:
            self._run_dask(jobs, on_result, on_failure, report)
        report.seconds = time.perf_counter() - start
        return report

    def _failed(
        self, key: Hashable, message: str, report: RunReport, on_failure: FailureHandler
    ) -> bool:
        """Record a failure; True when the call should be tried again."""
        attempt = report.attempts[key]
        report.errors.setdefault(key, []).append(message)
        final = attempt > self.retries
        log.warning("oracle call %s failed (attempt %d): %s", key, attempt, message)
        on_failure(key, message, attempt, final)
        if final:
            report.failed.append(key)
        return not final

    def _run_serial(self, jobs, on_result, on_failure, report) -> None:
        for key, atoms in jobs:
            while True:
                report.attempts[key] = report.attempts.get(key, 0) + 1
                try:
                    labels = _call(self.oracle, atoms)
                except Exception as error:
                    if self._failed(key, _describe(error), report, on_failure):
                        continue
                    break
                on_result(key, labels, report.attempts[key])
                report.labelled.append(key)
                break

    def _run_dask(self, jobs, on_result, on_failure, report) -> None:
        from distributed import wait

        client = self.client
        oracle = client.scatter(self.oracle, broadcast=True) if jobs else None
        by_key = dict(jobs)
        running: dict[Any, tuple[Hashable, float]] = {}

        def submit(key: Hashable) -> None:
            report.attempts[key] = report.attempts.get(key, 0) + 1
            future = client.submit(_call, oracle, by_key[key], pure=False)
            running[future] = (key, time.monotonic())

        for key, _ in jobs:
            submit(key)
        while running:
            try:
                done, _ = wait(list(running), timeout=self.poll_s, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished within poll_s
                done = set()
            for future in done:
                key, _ = running.pop(future)
                if future.status == "finished":
                    on_result(key, future.result(), report.attempts[key])
                    report.labelled.append(key)
                else:
                    error = future.exception() if future.status == "error" else None
                    message = _describe(error) if error else f"task {future.status}"
                    if self._failed(key, message, report, on_failure):
                        submit(key)
            if self.timeout_s is not None:
                now = time.monotonic()
                for future, (key, since) in list(running.items()):
                    if now - since > self.timeout_s:
                        running.pop(future)
                        future.cancel()
                        message = f"timed out after {self.timeout_s:g} s"
                        if self._failed(key, message, report, on_failure):
                            submit(key)
