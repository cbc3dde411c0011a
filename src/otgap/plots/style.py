"""One figure style for the whole project, and saving figures as vector PDF plus PNG.

(Started by the A.2 figures; the A.1 figures own and extend it. Figure code calls
``apply_style()`` once, then ``save_figure(fig, pdf_path, png_path)``.)
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from otgap.io import atomic_path  # noqa: E402

# Colour-blind-safe qualitative palette (Okabe & Ito), used as the default colour cycle.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
PNG_DPI = 200

# One colour per sequence model (A.1), fixed so a model looks the same in every panel and figure.
MODEL_COLOURS = {
    "neural_ode": "#0072B2",
    "neural_ode_oracle": "#56B4E9",
    "tlstm": "#E69F00",
    "lstm_dt": "#D55E00",
    "odernn": "#009E73",
    "grud": "#CC79A7",
    "last_observation": "#7F7F7F",
}
MODEL_LABELS = {
    "neural_ode": "Neural ODE",
    "neural_ode_oracle": "Neural ODE (oracle field, ablation)",
    "tlstm": "T-LSTM",
    "lstm_dt": "LSTM + $\\Delta t$",
    "odernn": "ODE-RNN",
    "grud": "GRU-D",
    "last_observation": "Last observation",
}
TRUTH_COLOUR = "#000000"


def model_colour(name: str) -> str:
    """The model's colour; models without a fixed one get a stable pick from the palette."""
    if name in MODEL_COLOURS:
        return MODEL_COLOURS[name]
    return PALETTE[sum(map(ord, name)) % len(PALETTE)]


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def apply_style() -> None:
    """Set the project's matplotlib defaults (fonts, grid, colour cycle, vector-friendly text)."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": PNG_DPI,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": matplotlib.cycler(color=list(PALETTE)),
            "legend.frameon": False,
            "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF
            "ps.fonttype": 42,
        }
    )


def save_figure(fig, *paths: str | os.PathLike) -> None:
    """Save ``fig`` to each path (format from the suffix) atomically and reproducibly.

    PDF metadata dates are dropped so that the same figure gives the same bytes.
    """
    for path in paths:
        suffix = os.fspath(path).rsplit(".", 1)[-1].lower()
        metadata = {"CreationDate": None} if suffix == "pdf" else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix, metadata=metadata, bbox_inches="tight")
