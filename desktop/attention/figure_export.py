"""Exporting an attention figure from the window: the dialog that asks for the file, size and
resolution (shared by the row's attention view and the statistics view), and the step that
asks for the provenance and runs the export.

Everything here runs on the GUI thread; the figure itself is drawn by
:mod:`engine.user.attention_figures`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.errors import LoupeError
from engine.model.inference import AttentionMaps

# Returns the dataset/model record that an exported figure's sidecar starts from (the window's).
ProvenanceSource = Callable[[], Mapping[str, Any]]
# Writes a figure whose content was read from the view beforehand; safe on any thread.
FigureWrite = Callable[[], list[Path]]
# Runs ``write`` and calls ``done(paths)`` or ``failed(sentence)`` on the GUI thread: the window's
# runs it as a job on an engine lane (matplotlib never draws on the GUI thread, and two exports
# never draw at once); without a window it runs now (run_now).
ExportRunner = Callable[[str, FigureWrite, Callable[[list[Path]], object], Callable[[str], object]], object]


def run_now(
    name: str, write: FigureWrite, done: Callable[[list[Path]], object], failed: Callable[[str], object]
) -> None:
    """Write on this thread (a view used on its own, without the window's job lanes)."""
    try:
        paths = write()
    except LoupeError as exc:
        failed(str(exc))
        return
    done(paths)


def ask_and_export(
    parent: QWidget,
    name: str,
    size: tuple[float, float],
    provenance_source: ProvenanceSource | None,
    writer: Callable[..., FigureWrite],
    *,
    runner: ExportRunner,
    done: Callable[[list[Path]], object],
    failed: Callable[[str], object],
) -> None:
    """Ask for a figure's file and size, read what to draw (``writer(path, provenance, width=,
    height=, dpi=)``, on this, the GUI thread) and hand the writing to ``runner``.

    Nothing happens when the user cancels. The provenance is asked for only after the dialog,
    so it is as fresh as the export.
    """
    request = FigureExportDialog.ask(parent, name, width=size[0], height=size[1])
    if request is None:
        return
    provenance = provenance_source() if provenance_source is not None else {}
    try:
        write = writer(request.path, provenance, width=request.width, height=request.height, dpi=request.dpi)
    except LoupeError as exc:
        failed(str(exc))
        return
    runner(name, write, done, failed)


def save_row_attention(
    path: Path,
    maps: AttentionMaps,
    provenance: Mapping[str, Any] | None,
    *,
    rollout_shown: bool,
    layer: int,
    head: int | None,
    hide_special: bool,
    unit: str,
    shown_mode: str,
    title: str,
    size: tuple[float, float],
    dpi: int,
) -> list[Path]:
    """Write one row's attention heatmap (or its rollout) to ``path`` and its sidecar; returns both.

    ``provenance`` is the window's record (dataset, model), completed here with the view,
    layer, head, unit and text; ``shown_mode`` is the view's mode, recorded as it was. Raises
    :class:`LoupeError`.
    """
    from engine.user.attention_figures import save_attention_figure
    from engine.user.export import attention_provenance, write_sidecar

    view = "rollout" if rollout_shown else "heatmap"
    record = attention_provenance(
        provenance or {},
        view=view,
        layer=None if rollout_shown else layer,  # rollout spans every layer and head
        head=None if rollout_shown else head,
        hide_special=hide_special,
        unit=unit,
        shown_mode=shown_mode,
        text=maps.text,
        tokens=len(maps.tokens),
    )
    figure = save_attention_figure(
        path,
        maps,
        layer=layer,
        head=head,
        view=view,
        hide_special=hide_special,
        unit=unit,
        title=title,
        width=size[0],
        height=size[1],
        dpi=dpi,
        provenance=record,
    )
    return [figure, write_sidecar(figure, record)]


@dataclass(frozen=True)
class FigureRequest:
    """Where and how large to write a figure: inches, and dots per inch for a PNG."""

    path: Path
    width: float
    height: float
    dpi: int


class FigureExportDialog(QDialog):
    """Asks for a figure's file (.png/.svg/.pdf), size in inches and PNG resolution."""

    def __init__(self, parent: QWidget | None, name: str, *, width: float, height: float) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export figure")
        self.path = QLineEdit(str(Path.home() / name))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        self.width_inches = _inches(width)
        self.height_inches = _inches(height)
        self.dpi = QSpinBox()
        self.dpi.setRange(30, 1200)
        self.dpi.setValue(200)
        self.dpi.setSuffix(" dpi")
        self.dpi.setToolTip("Resolution of a PNG; SVG and PDF are vector and ignore it")
        self.pixels = QLabel()
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("File", where)
        form.addRow("Width", self.width_inches)
        form.addRow("Height", self.height_inches)
        form.addRow("Resolution", self.dpi)
        form.addRow("", self.pixels)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        for spin in (self.width_inches, self.height_inches, self.dpi):
            spin.valueChanged.connect(self._update_pixels)
        self.path.textChanged.connect(self._update_pixels)
        self._update_pixels()

    @classmethod
    def ask(cls, parent: QWidget | None, name: str, *, width: float, height: float) -> FigureRequest | None:
        """Show the dialog modally; None when cancelled."""
        dialog = cls(parent, name, width=width, height=height)
        return dialog.request() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def request(self) -> FigureRequest:
        return FigureRequest(
            Path(self.path.text()).expanduser(),
            self.width_inches.value(),
            self.height_inches.value(),
            self.dpi.value(),
        )

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export figure", self.path.text(), "Figures (*.svg *.pdf *.png)"
        )
        if path:
            self.path.setText(path)

    def _update_pixels(self) -> None:
        png = self.path.text().lower().endswith(".png")
        self.dpi.setEnabled(png)
        request = self.request()
        self.pixels.setText(
            f"{round(request.width * request.dpi)} x {round(request.height * request.dpi)} pixels"
            if png
            else "vector: any size in print"
        )


def _inches(value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(1.0, 50.0)
    spin.setSingleStep(0.5)
    spin.setDecimals(1)
    spin.setSuffix(" in")
    spin.setValue(value)
    return spin
