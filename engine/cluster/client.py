"""The submitting side, for the CLI and the window: submit, follow, read the log of, and stop a job.

:class:`ClusterClient` checks access first (:mod:`engine.cluster.access`), then talks to the
cluster's Jobs REST API through :mod:`engine.cluster.ray_backend` (imported on first use, so the
desktop loads Ray only when the user sends something to a cluster). The job's folder (``job.json``
and, unless the cluster holds them itself, ``secrets.json``) is made in a private temporary
folder and deleted once Ray has uploaded it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from engine.cluster.access import (
    GIVEN_BY_CALLER,
    ClusterAccess,
    ClusterAccessError,
    ClusterError,
    check_access,
)
from engine.cluster.progress import JobProgress, latest
from engine.cluster.secrets import JobSecrets, gather_secrets, write_secrets
from engine.cluster.spec import JOB_FILE, ClusterJob
from engine.runtime.jobs import CancelToken

# The driver's command on the cluster: -P keeps the uploaded working folder off the import path
# (DESIGN.md §6), so nothing uploaded ever runs; the folder holds JSON only.
ENTRYPOINT = "python -P -m engine.cluster.driver"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
__all__ = ["ClusterAccessError", "ClusterClient", "ClusterError", "JobState"]


@dataclass(frozen=True)
class JobState:
    """What a client shows about a job: Ray's status, the driver's progress and its sentence."""

    job_id: str
    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED (Ray's JobStatus names)
    progress: JobProgress | None = None
    message: str = ""  # the driver's one-sentence error, else Ray's own message

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def describe(self) -> str:
        parts = [self.status.lower()]
        if self.progress is not None:
            parts.append(self.progress.describe())
        if self.message and self.status in ("FAILED", "STOPPED"):
            parts.append(self.message)
        return ": ".join(parts)


class ClusterClient:
    """One cluster's Jobs API, reached with the token :func:`check_access` found."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        token_source: str = GIVEN_BY_CALLER,
        insecure: bool = False,
    ) -> None:
        self.access: ClusterAccess = check_access(
            address, token=token, token_source=token_source, insecure=insecure
        )

    def submit(self, job: ClusterJob, *, send_secrets: bool = True) -> str:
        """Submit ``job`` and return its id. ``job.redis_url`` may hold a password: it is moved
        to the secrets, with this machine's team key, unless ``send_secrets`` is False."""
        from engine.cluster import ray_backend

        clean_url, secrets = gather_secrets(job.redis_url)
        job = replace(job, redis_url=clean_url)
        folder = Path(tempfile.mkdtemp(prefix="loupe-job-"))
        try:
            (folder / JOB_FILE).write_text(job.to_json(), encoding="utf-8")
            write_secrets(folder, secrets if send_secrets else JobSecrets())
            metadata = {"loupe": job.loupe_version or "unknown", "dataset": Path(job.path).name[:200]}
            return ray_backend.submit(self.access, folder, ENTRYPOINT, metadata)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def state(self, job_id: str) -> JobState:
        """The job's status, its latest progress line and its error sentence, if any."""
        from engine.cluster import ray_backend

        status, ray_message = ray_backend.job_status(self.access, job_id)
        progress, error = latest(ray_backend.job_logs(self.access, job_id))
        message = error or ("" if status == "SUCCEEDED" else _last_line(ray_message))
        return JobState(job_id, status, progress, message)

    def logs(self, job_id: str) -> str:
        from engine.cluster import ray_backend

        return ray_backend.job_logs(self.access, job_id)

    def stop(self, job_id: str) -> bool:
        """Ask the cluster to stop the job; False when it had already ended."""
        from engine.cluster import ray_backend

        return ray_backend.stop_job(self.access, job_id)

    def wait(
        self,
        job_id: str,
        on_state: Callable[[JobState], None],
        *,
        poll_s: float = 2.0,
        token: CancelToken | None = None,
    ) -> JobState:
        """Poll until the job ends, calling ``on_state`` each time; a cancelled ``token`` stops
        the job (the window's Cancel) and returns its final state."""
        while True:
            state = self.state(job_id)
            on_state(state)
            if state.terminal:
                return state
            if token is not None and token.cancelled:
                self.stop(job_id)
                token = None  # stop once, then follow the job to its end
            time.sleep(poll_s)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
