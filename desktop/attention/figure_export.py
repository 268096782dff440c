"""Exporting an attention figure from the window: :class:`FigureView`, what the row's attention
view and the statistics view share (their signals, the provenance, the runner), the dialog that
asks for the file, size and resolution, and how one row's figure is written.

The dialog and the reading of what to draw run on the GUI thread; the writing
(:mod:`engine.user.attention_figures`) runs wherever ``export_runner`` puts it: the window's
runs it as a job on an engine lane.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
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


class FigureView(QWidget):
    """A view whose figure can be exported: the row's attention and a group's statistics.

    ``exported(list[Path])`` and ``export_failed(str)`` follow an export started from the view
    (GUI thread). ``provenance_source``, when the window sets it, returns the dataset/model
    record every exported figure's sidecar starts from; ``export_runner`` writes the figure
    (now, or as the window's job). A subclass says what its figure is in :meth:`figure_writer`
    and its default size in ``figure_size``.
    """

    exported = Signal(list)
    export_failed = Signal(str)
    figure_size: tuple[float, float] = (7.0, 6.0)  # inches

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.provenance_source: ProvenanceSource | None = None
        self.export_runner: ExportRunner = run_now  # the window's runs exports as jobs

    def figure_writer(
        self, path: Path, provenance: Mapping[str, Any] | None, *, width: float, height: float, dpi: int
    ) -> FigureWrite:
        """What the view shows, read now (GUI thread), as a function that writes it later on any
        thread. Raises :class:`LoupeError` when nothing is shown."""
        raise NotImplementedError

    def export_figure(
        self,
        path: Path,
        provenance: Mapping[str, Any] | None = None,
        *,
        width: float | None = None,
        height: float | None = None,
        dpi: int = 200,
    ) -> list[Path]:
        """Write the view's figure to ``path`` and its sidecar now; returns both paths (the size
        defaults to ``figure_size``). Raises :class:`LoupeError`."""
        width = self.figure_size[0] if width is None else width
        height = self.figure_size[1] if height is None else height
        return self.figure_writer(path, provenance, width=width, height=height, dpi=dpi)()

    def ask_and_export(self, name: str) -> None:
        """Ask for a figure's file, size and resolution, read what to draw (here, on the GUI
        thread) and hand the writing to ``export_runner``; reports by signal.

        Nothing happens when the user cancels. The provenance is asked for only after the
        dialog, so it is as fresh as the export.
        """
        request = FigureExportDialog.ask(self, name, width=self.figure_size[0], height=self.figure_size[1])
        if request is None:
            return
        provenance = self.provenance_source() if self.provenance_source is not None else {}
        try:
            write = self.figure_writer(
                request.path, provenance, width=request.width, height=request.height, dpi=request.dpi
            )
        except LoupeError as exc:
            self.export_failed.emit(str(exc))
            return
        self.export_runner(name, write, self.exported.emit, self.export_failed.emit)


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
