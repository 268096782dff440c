"""File ▸ Send to cluster…: where to send the open dataset's map, with which token, and what the
cluster will compute.

The address is remembered in the settings; the token never is. The token comes from, in order,
the password field (when the user types one), the system keyring entry for the address
(service ``loupe-ray``, user = the normalised address, as :mod:`engine.cluster.access` names
it), else Ray's own places (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``):
the dialog says which one will be used, never the token itself.

The dialog says in one sentence why nothing can be sent when that is so: Ray is not installed,
the window uses its embedded cache (a cluster can only fill a shared one), no dataset file is
open, or the token or address is refused. Nothing here imports Ray or talks to the network.
Window-modal and opened, never exec'd. GUI thread only.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, replace

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from engine.cache.keyring_entry import keyring_secret
from engine.cluster.access import (
    KEYRING_SERVICE,
    ClusterAccessError,
    check_access,
    find_token,
    normalised_address,
)
from engine.cluster.spec import ClusterJob
from engine.user.settings import without_password

NO_RAY = (
    "Sending to a cluster needs Ray, which this Loupe does not have: install it with "
    "pip install 'loupe[cluster]' and start Loupe again."
)
EMBEDDED_CACHE = (
    "This window uses its own embedded cache, which a cluster cannot fill: set a shared Redis "
    "cache in File ▸ Settings… (Cache ▸ Shared server), restart Loupe, then send the dataset."
)
TYPED = "the token typed here"
KEYRING = "the system keyring"


@dataclass(frozen=True, repr=False)
class ClusterRequest:
    """What the dialog hands over once accepted: the job, where to send it and with what token."""

    job: ClusterJob
    address: str
    token: str | None
    token_source: str
    insecure: bool
    remember_token: bool

    def __repr__(self) -> str:  # never the token, even in a traceback's locals
        return f"ClusterRequest({self.address}, token from {self.token_source})"


def ray_installed() -> bool:
    """Whether Ray could be imported, without importing it (it loads 600 MB of modules)."""
    return importlib.util.find_spec("ray") is not None


def keyring_usable() -> bool:
    """Whether the optional ``keyring`` package imports (only then is "Remember" offered)."""
    try:
        importlib.import_module("keyring")
    except Exception:  # ImportError, or a backend that fails as it loads
        return False
    return True


def choose_token(address: str, typed: str) -> tuple[str | None, str]:
    """(token, where it comes from) for ``address``: the typed one, the keyring's entry for the
    address, else Ray's own places. Raises ClusterAccessError for an unusable address or a
    ``RAY_AUTH_TOKEN_PATH`` that names no file."""
    if typed.strip():
        return typed.strip(), TYPED
    normalised = normalised_address(address)
    from_keyring = keyring_secret(KEYRING_SERVICE, normalised)
    if from_keyring:
        return from_keyring.strip(), KEYRING
    return find_token(normalised)


class ClusterDialog(QDialog):
    """Asks where to send ``job`` (its dataset, model, layer and map are shown read-only);
    :meth:`request` once accepted. ``refusal``: a sentence saying why nothing can be sent."""

    def __init__(
        self, job: ClusterJob | None, address: str, refusal: str | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send to cluster")
        self.setMinimumWidth(560)
        self._job, self._refusal = job, refusal
        self._checked: ClusterRequest | None = None
        self.address = QLineEdit(address)
        self.address.setPlaceholderText("https://ray-head.example.org:8265")
        self.address.setToolTip("The Ray cluster's dashboard (Jobs API) address")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("leave empty: the keyring or Ray's own token")
        self.token_source = QLabel()
        self.token_source.setWordWrap(True)
        self.remember = QCheckBox("Remember in the keyring")
        self.remember.setToolTip(
            f"Saved in the system keyring as service {KEYRING_SERVICE}, user = the address"
        )
        self.insecure = QCheckBox("Allow insecure (no token / plain http)")
        self.insecure.setToolTip("Only for a cluster on a network you know to be private: anyone "
                                 "who can reach an unauthenticated Ray can run code on it")  # fmt: skip
        self.cluster_path = QLineEdit(job.path if job is not None else "")
        self.cluster_path.setToolTip(
            "The dataset as the cluster's nodes see it: a shared mount, or a URI such as s3://bucket/data.parquet"
        )
        self.error = QLabel(refusal or "")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b3261e")
        form = QFormLayout(self)
        form.addRow("Cluster address", self.address)
        form.addRow("Token", self.token)
        form.addRow("", self.token_source)
        form.addRow("", self.remember)
        self._keyring = keyring_usable()
        form.setRowVisible(self.remember, self._keyring)  # offered only where it can be kept
        form.addRow("", self.insecure)
        for name, value in describe_job(job):
            shown = QLabel(value)
            shown.setWordWrap(True)
            form.addRow(name, shown)
        form.addRow("Dataset on the cluster", self.cluster_path)
        form.addRow(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.send = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.send.setText("Send")
        self.buttons.accepted.connect(self._send)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.address.editingFinished.connect(self.update_token_source)
        self.token.textChanged.connect(self.update_token_source)
        self.insecure.toggled.connect(self.update_token_source)
        self.update_token_source()
        if refusal is not None:
            for field in (self.address, self.token, self.insecure, self.cluster_path, self.send):
                field.setEnabled(False)

    def update_token_source(self) -> None:
        """Say where the token will come from (never the token), or why there is none."""
        if self._refusal is not None:
            self.token_source.setText("")
            return
        if not self.address.text().strip():
            self.token_source.setText("Give the cluster's address: its Ray dashboard, https://HOST:PORT.")
            return
        try:
            token, source = choose_token(self.address.text(), self.token.text())
        except ClusterAccessError as exc:
            self.token_source.setText(str(exc))
            return
        if token:
            self.token_source.setText(f"Token from {source}.")
        elif self.insecure.isChecked():
            self.token_source.setText("No token: sent without one (insecure).")
        else:
            self.token_source.setText(
                "No token found (the keyring, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)."
            )

    def _send(self) -> None:
        """Check the address and token here (no network), then accept; a refusal stays on show."""
        try:
            self._checked = self._request()
        except ClusterAccessError as exc:
            self.error.setText(str(exc))
            return
        self.accept()

    def _request(self) -> ClusterRequest:
        assert self._job is not None and self._refusal is None
        typed = self.token.text()
        token, source = choose_token(self.address.text(), typed)
        access = check_access(
            self.address.text(), token=token, token_source=source, insecure=self.insecure.isChecked()
        )
        path = self.cluster_path.text().strip() or self._job.path
        job = replace(self._job, path=path)
        remember = self._keyring and self.remember.isChecked() and source == TYPED
        return ClusterRequest(job, access.address, token, source, self.insecure.isChecked(), remember)

    def request(self) -> ClusterRequest:
        """The checked request (call once accepted)."""
        assert self._checked is not None, "the dialog was not accepted"
        return self._checked


def describe_job(job: ClusterJob | None) -> list[tuple[str, str]]:
    """The read-only rows: what the cluster will compute (the window's dataset, model, layer, map)."""
    if job is None:
        return [("Dataset", "none open")]
    params = ", ".join(f"{name}={value}" for name, value in sorted(job.params.items())) or "defaults"
    layer = "last" if job.layer == -1 else str(job.layer)
    return [
        ("Dataset", job.path),
        ("Model", job.model),
        ("Layer", layer),
        ("Projection", f"{job.method.upper()} ({params}), seed {job.seed}"),
        ("Shared cache", without_password(job.redis_url)),
    ]
