"""File ▸ Send to cluster…: the open dataset's embeddings and map computed by a Ray cluster into
the shared cache, followed in the Jobs panel, then shown here from that cache.

:class:`ClusterActions` builds the job from the application model (the open dataset file, the
model, layer and map on show), opens :class:`~desktop.window.cluster_dialog.ClusterDialog`, and
runs :mod:`desktop.operations.cluster_ops`. It knows the window only through what it is given.
GUI thread only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QWidget

from desktop.model.document import AppModel, Source
from desktop.operations import cluster_ops
from desktop.operations.cluster_ops import ClusterFollow
from desktop.operations.operation import Operations
from desktop.window.cluster_dialog import (
    EMBEDDED_CACHE,
    KEYRING,
    NO_RAY,
    TYPED,
    ClusterDialog,
    ClusterRequest,
    ray_installed,
)
from engine.api.protocol import EngineAPI
from engine.cluster.access import KEYRING_SERVICE
from engine.cluster.client import JobState
from engine.cluster.spec import ClusterJob
from engine.maps.projection import ProjectionParams
from engine.runtime.version import loupe_version
from engine.user.settings import load_settings, save_settings

NO_FILE = "Open a dataset file first: a cluster reads the dataset from a file, and the demo has none."
OWN_VECTORS = "This dataset came with its own vectors: there is nothing for a cluster to embed."
FOLLOWING = "A cluster job is being followed already: wait for it, or cancel it in the Jobs panel (Ctrl+J)."
POOLING = (
    "A cluster embeds with the model's own pooling, and this window uses another: choose the "
    "model's own in File ▸ Settings… to send this dataset."
)


@dataclass(frozen=True)
class Sent:
    """What the window sent, to show its map once the job has succeeded."""

    source: Source  # the dataset as this machine opens it
    job: ClusterJob
    params: ProjectionParams


class ClusterActions(QObject):
    """The window's cluster job: the dialog, the operation that follows the job, and its map."""

    def __init__(
        self,
        parent: QWidget,
        model: AppModel,
        operations: Operations,
        *,
        engine: Callable[[], EngineAPI],
        cache_url: str,
        say: Callable[[str], object],
        show_jobs: Callable[[], object],
    ) -> None:
        super().__init__(parent)
        self.parent_widget, self.model, self.operations = parent, model, operations
        self._engine, self._cache_url, self._say, self._show_jobs = engine, cache_url, say, show_jobs
        self.dialog: ClusterDialog | None = None
        self.follow = ClusterFollow()
        self.sent: Sent | None = None
        self.finished: JobState | None = None  # the last job's final state, once it has succeeded
        self.poll_s = cluster_ops.POLL_S

    # -- the dialog ----------------------------------------------------------------------------

    def choose(self) -> None:
        """File ▸ Send to cluster…: the dialog (saying why nothing can be sent, when that is so)."""
        job, params = self.job_of_window()
        dialog = ClusterDialog(job, load_settings().cluster_address, self.refusal(), self.parent_widget)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.send(dialog.request(), params))
        dialog.destroyed.connect(lambda: self._forget_dialog(dialog))
        self.dialog = dialog
        dialog.open()

    def _forget_dialog(self, dialog: ClusterDialog) -> None:
        if self.dialog is dialog:  # not a newer one opened before this one was deleted
            self.dialog = None

    def refusal(self) -> str | None:
        """Why the window cannot send its dataset now, in one sentence; None when it can."""
        if not ray_installed():
            return NO_RAY
        if not self._cache_url:
            return EMBEDDED_CACHE
        if self.operations.running("cluster"):  # a second one would supersede, and stop, the first
            return FOLLOWING
        source = self.model.source
        if source is None or source.path is None or self.model.opened is None:
            return NO_FILE
        if self.model.opened.own_vectors:
            return OWN_VECTORS
        if self.model.engine.pooling is not None:
            return POOLING
        return None

    def job_of_window(self) -> tuple[ClusterJob | None, ProjectionParams]:
        """The job that computes what the window shows: its dataset file, model, layer and map
        (the map on show, else the parameters asked for); None without a dataset file."""
        shown = self.model.shown
        params = shown.map.params if shown is not None and not shown.preview else self.model.params
        source, dataset = self.model.source, self.model.dataset
        if source is None or source.path is None or dataset is None:
            return None, params
        job = ClusterJob(
            path=str(source.path),
            redis_url=self._cache_url,
            model=self.model.engine.model,
            layer=self.model.engine.layer,
            precision=self.model.engine.precision,  # so the map opens warm in this window
            text_column=dataset.text_column,
            label_column=dataset.label_column,
            method=params.method,
            params={name: str(value) for name, value in params.options},
            seed=params.seed,
            loupe_version=loupe_version(),
        )
        return job, params

    # -- sending and following ----------------------------------------------------------------

    def send(self, request: ClusterRequest, params: ProjectionParams) -> None:
        """Submit ``request`` and follow it in the Jobs panel (an operation on the cluster lane)."""
        source = self.model.source
        assert source is not None and source.path is not None
        save_settings(load_settings().with_changes(cluster_address=request.address))
        if request.remember_token and request.token:
            self._remember(request.address, request.token)
        dataset = self.model.dataset
        columns = (dataset.text_column, dataset.label_column) if dataset is not None else (None, None)
        local = Source(source.name, source.path, text_column=columns[0], label_column=columns[1])
        self.sent = Sent(local, request.job, params)
        self.follow = ClusterFollow()
        operation = cluster_ops.send_to_cluster(
            request.job,
            address=request.address,
            # A token Ray's own places hold is found again there, so a refusal names its source.
            secret=request.token if request.token_source in (TYPED, KEYRING) else None,
            secret_source=request.token_source,
            insecure=request.insecure,
            follow=self.follow,
            done=self._succeeded,
            poll_s=self.poll_s,
        )
        operation.failure(self._failed).run(self.operations)
        self._show_jobs()
        self._say(
            f"Sending {source.name} to the cluster at {request.address} (token from {request.token_source})…"
        )

    def _remember(self, address: str, token: str) -> None:
        try:
            importlib.import_module("keyring").set_password(KEYRING_SERVICE, address, token)
        except Exception as exc:  # no backend, a locked keyring: the job goes anyway
            self._say(f"The token was not saved in the keyring ({type(exc).__name__}).")

    def _failed(self, message: str) -> bool:
        self._say(f"Send to cluster: {message}")
        return False  # the window shows it too (a dialog with "Show log")

    def _succeeded(self, state: JobState) -> None:
        """The job has SUCCEEDED: its map, from the shared cache, if the window can still show it."""
        sent = self.sent
        if sent is None:
            return
        self.finished = state
        self._say(f"Cluster job {state.job_id} succeeded: opening its map from the shared cache.")
        engine = self.model.engine
        if (engine.model, engine.layer, engine.pooling) != (sent.job.model, sent.job.layer, None):
            self._say(
                f"Cluster job {state.job_id} succeeded, but this window now uses another model, layer "
                f"or pooling: choose {sent.job.model}, layer {sent.job.layer} to see its map."
            )
            return
        cluster_ops.open_from_shared_cache(
            self._engine(), self.model, sent.source, sent.params, self._say
        ).run(self.operations)

    def detach(self) -> None:
        """The window is closing: a followed job goes on running on the cluster (its map lands
        in the shared cache, where any desktop opens it)."""
        self.follow.detached.set()

    @property
    def job_id(self) -> str | None:
        """The cluster's id of the last job sent (None until the cluster has accepted it)."""
        return self.follow.job_id
