"""The Lab tab: the RNN lab's experiments, run when asked, each with a plot and its numbers.

`build_lab_tab` adds the tab inside an open `gr.Blocks`; the `lab_*` functions behind it are
plain (inputs in, tables and HTML out) so tests and the API call them directly.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import gradio as gr
import numpy as np
import pandas as pd

from seq2seq_app.core.layers.rnn import CELLS
from seq2seq_app.lab import depth, gradients, inside, memory
from seq2seq_app.lab.cells import LAB_CELLS, parse_cells
from ui.handlers import InputError, check_text

MAX_LENGTH = 200  # steps per sequence the page accepts: about a minute for all six cells at 100
INSIDE_MODELS = ("sentiment_nsmc", "sentiment_imdb", "translate")


def _cells(text: str | None) -> tuple[str, ...]:
    try:
        return parse_cells(text)
    except ValueError as e:
        raise InputError(str(e)) from e


def _length(value, low: int) -> int:
    if value is None or not low <= int(value) <= MAX_LENGTH:
        raise InputError(f"Choose a length between {low} and {MAX_LENGTH}.")
    return int(value)


def lab_gradients(cells: str | None, length: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Runs `gradients_experiment`; returns (gradient norms table, forward norms table, raw result).

    The gradient table is long-form (step, cell, phase, norm, log10_norm): log10 because the
    norms span many orders of magnitude and the plot has no log axis.
    """
    result = gradients.gradients_experiment(_cells(cells), _length(length, 2), int(seed or 0))
    rows = [
        (t, cell, phase, norm, float(np.log10(norm)) if norm else None)
        for cell, phases in result["cells"].items()
        for phase, norms in phases.items()
        for t, norm in enumerate(norms)
    ]
    grads = pd.DataFrame(rows, columns=["step", "cell", "phase", "norm", "log10_norm"])
    grads["series"] = grads["cell"] + " (" + grads["phase"] + ")"
    forward = pd.DataFrame(
        [(t, name, v) for name, values in result["forward"].items() for t, v in enumerate(values)],
        columns=["step", "activation", "state_norm"],
    )
    return grads, forward, result


def lab_memory(cells: str | None, longest_lag: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Runs `memory_experiment` with lags up to `longest_lag`; returns (accuracy table, raw result)."""
    longest = _length(longest_lag, 1)
    lags = tuple(lag for lag in memory.LAGS if lag < longest) + (longest,)
    result = memory.memory_experiment(_cells(cells), lags, int(seed or 0))
    table = pd.DataFrame(
        [
            (cell, lag, acc)
            for cell, values in result["cells"].items()
            for lag, acc in zip(values["lag"], values["accuracy"])
        ],
        columns=["cell", "lag", "accuracy"],
    )
    return table, result


def lab_depth(cell: str, longest_lag: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Runs `depth_experiment`; returns (accuracy per lag and stack, one summary row per stack, raw)."""
    if cell not in CELLS:
        raise InputError(f"Choose one of {', '.join(CELLS)}.")
    longest = _length(longest_lag, 1)
    lags = tuple(lag for lag in depth.LAGS if lag < longest) + (longest,)
    result = depth.depth_experiment(cell, lags, int(seed or 0))
    names = [
        f"{c['layers']} layer{'s' if c['layers'] > 1 else ''}, {'bi' if c['bidirectional'] else 'uni'}"
        for c in result["configs"]
    ]
    accuracy = pd.DataFrame(
        [
            (name, lag, acc)
            for name, c in zip(names, result["configs"])
            for lag, acc in zip(c["lag"], c["accuracy"])
        ],
        columns=["stack", "lag", "accuracy"],
    )
    summary = pd.DataFrame(
        [
            (name, c["parameters"], round(float(np.mean(c["accuracy"])), 3), c["train_seconds"])
            for name, c in zip(names, result["configs"])
        ],
        columns=["stack", "parameters", "mean accuracy", "train seconds"],
    )
    return accuracy, summary, result


def lab_inside(models: dict, text: str | None, key: str) -> tuple[str, str]:
    """The chosen shipped model's gates (sentiment) or encoder states (translator) for `text`.

    Returns (a summary line in Markdown, the heatmaps as HTML).
    """
    text = check_text(text, "text")
    if key not in INSIDE_MODELS:
        raise InputError(f"Choose one of {', '.join(INSIDE_MODELS)}.")
    model = models.get(key)
    if model is None:
        raise InputError(f"The {key} model is not installed.")
    try:
        if key == "translate":
            result = inside.translator_inside(model.path, text)
        else:
            result = inside.sentiment_inside(model.path, text)
    except ValueError as e:
        raise InputError(str(e)) from e
    units = [f"unit {u}" for u in result["units"]]
    if key == "translate":
        summary = (
            f"{len(result['tokens'])} source tokens; the {len(units)} of the encoder's units that move most. "
            "The forward state at a token has read up to it, the backward one from it to the end."
        )
        maps = [
            ("Forward GRU state", result["forward"], -1.0),
            ("Backward GRU state", result["backward"], -1.0),
        ]
    else:
        check = "matches" if result["match"] else "does NOT match"
        summary = (
            f"Recomputed score {result['score']:.4f}; the SavedModel's {result['model_score']:.4f} "
            f"({check} within {inside.MATCH_TOLERANCE:g}). "
            f"Rows: the {len(units)} hidden units that move most."
        )
        maps = [
            ("Update gate z (1: keep the old state)", result["update"], 0.0),
            ("Reset gate r (0: ignore the old state)", result["reset"], 0.0),
            ("Hidden state h", result["hidden"], -1.0),
        ]
    body = "".join(
        f"<h4>{html.escape(title)}</h4>{heatmap(result['tokens'], units, rows, low)}"
        for title, rows, low in maps
    )
    return summary, body


def heatmap(tokens: list[str], row_labels: list[str], rows: list[list[float]], low: float) -> str:
    """An HTML table, tokens across, one row per label; values in [low, 1].

    low = 0: white to blue; low = −1: red (−1) through white (0) to blue (1).

    Example:
    >>> heatmap(["a", "<b>"], ["unit 0"], [[0.2, -0.9]], -1.0).count("<td")
    2
    """
    head = "".join(f'<th style="{_HEAD}">{html.escape(t)}</th>' for t in tokens)
    body = []
    for label, values in zip(row_labels, rows):
        cells = "".join(_cell(float(v), low) for v in values)
        body.append(f'<tr><th style="{_ROW_HEAD}">{html.escape(label)}</th>{cells}</tr>')
    return (
        '<div style="overflow-x:auto"><table class="lab-heatmap" '
        'style="border-collapse:collapse;font-size:11px">'
        f'<tr><th style="{_ROW_HEAD}"></th>{head}</tr>{"".join(body)}</table></div>'
    )


_HEAD = "padding:1px 3px;font-weight:600;white-space:nowrap"
_ROW_HEAD = "padding:1px 6px;text-align:right;font-weight:600;white-space:nowrap"
_CELL = "width:1.8em;height:1.2em;border:1px solid #f3f4f6;"


def _cell(value: float, low: float) -> str:
    value = min(max(value, low), 1.0) if np.isfinite(value) else 0.0
    colour = f"rgba(37,99,235,{value:.3f})" if value >= 0 else f"rgba(220,38,38,{-value:.3f})"
    return f'<td title="{value:.3f}" style="{_CELL}background:{colour}"></td>'


def build_lab_tab(models: dict, shown_errors: Callable[[str, Callable], Callable]) -> None:
    """Adds the Lab tab to the enclosing `gr.Blocks`.

    Args:
        models: catalog key → loaded model or None (the `inside` experiment reads their folders).
        shown_errors: wraps a handler so failures become messages in the page (ui.app's).
    """
    all_cells = ",".join(LAB_CELLS)
    with gr.Tab("Lab", elem_id="tab-lab"):
        gr.Markdown(
            "Small experiments on recurrent cells, computed when you press a button (seeded: the same "
            "inputs give the same numbers). See docs/lab.md; `python -m training.lab` runs the same code."
        )
        with gr.Accordion("Gradients through time: ‖∂L/∂h_t‖ with the loss on the last step", open=True):
            with gr.Row():
                g_cells = gr.Textbox(all_cells, label="Cells", elem_id="lab-gradient-cells")
                g_length = gr.Slider(2, MAX_LENGTH, value=60, step=1, label="Length T")
                g_seed = gr.Number(0, precision=0, label="Seed")
            g_button = gr.Button(
                "Run gradients (about a minute)", variant="primary", elem_id="lab-gradients-button"
            )
            g_plot = gr.LinePlot(
                x="step",
                y="log10_norm",
                color="series",
                tooltip=["step", "series", "norm"],
                label="log10 ‖∂L/∂h_t‖, at initialisation and after training to recall the first symbol",
                elem_id="lab-gradients-plot",
            )
            f_plot = gr.LinePlot(
                x="step",
                y="state_norm",
                color="activation",
                label="Forward pass: mean ‖h_t‖ of a SimpleRNN, tanh vs relu (same weights, same inputs)",
                elem_id="lab-forward-plot",
            )
            g_numbers = gr.JSON(label="The numbers (what --json writes)", elem_id="lab-gradients-json")
            g_button.click(
                shown_errors("Gradients", lab_gradients),
                [g_cells, g_length, g_seed],
                [g_plot, f_plot, g_numbers],
                api_name="lab_gradients",
            )
        with gr.Accordion("Memory: recall the symbol seen L steps ago", open=False):
            with gr.Row():
                m_cells = gr.Textbox(all_cells, label="Cells", elem_id="lab-memory-cells")
                m_lag = gr.Slider(1, MAX_LENGTH, value=40, step=1, label="Longest lag L")
                m_seed = gr.Number(0, precision=0, label="Seed")
            m_button = gr.Button(
                "Run memory (about a minute)", variant="primary", elem_id="lab-memory-button"
            )
            m_plot = gr.LinePlot(
                x="lag",
                y="accuracy",
                color="cell",
                y_lim=[0, 1],
                tooltip=["cell", "lag", "accuracy"],
                label="Accuracy against the lag (chance: 0.25)",
                elem_id="lab-memory-plot",
            )
            m_numbers = gr.JSON(label="The numbers (what --json writes)", elem_id="lab-memory-json")
            m_button.click(
                shown_errors("Memory", lab_memory),
                [m_cells, m_lag, m_seed],
                [m_plot, m_numbers],
                api_name="lab_memory",
            )
        with gr.Accordion("Depth: 1 or 2 layers, one or both directions", open=False):
            with gr.Row():
                d_cell = gr.Dropdown(list(CELLS), value="gru", label="Cell")
                d_lag = gr.Slider(1, MAX_LENGTH, value=20, step=1, label="Longest lag L")
                d_seed = gr.Number(0, precision=0, label="Seed")
            d_button = gr.Button("Run depth (about a minute)", variant="primary", elem_id="lab-depth-button")
            d_plot = gr.LinePlot(
                x="lag",
                y="accuracy",
                color="stack",
                y_lim=[0, 1],
                tooltip=["stack", "lag", "accuracy"],
                label="Recall accuracy against the lag, same budget for every stack (chance: 0.25)",
                elem_id="lab-depth-plot",
            )
            d_table = gr.Dataframe(
                label="Size, accuracy and training time (this machine)", elem_id="lab-depth-table"
            )
            d_numbers = gr.JSON(label="The numbers (what --json writes)")
            d_button.click(
                shown_errors("Depth", lab_depth),
                [d_cell, d_lag, d_seed],
                [d_plot, d_table, d_numbers],
                api_name="lab_depth",
            )
        with gr.Accordion("Inside the shipped models: gates and states per token", open=False):
            i_text = gr.Textbox(
                label="Text (a review, or a Spanish sentence for the translator)", elem_id="lab-inside-text"
            )
            i_model = gr.Radio(list(INSIDE_MODELS), value="sentiment_nsmc", label="Model")
            i_button = gr.Button("Look inside", variant="primary", elem_id="lab-inside-button")
            i_summary = gr.Markdown(elem_id="lab-inside-summary")
            i_maps = gr.HTML(elem_id="lab-inside-maps")
            i_button.click(
                shown_errors("Inside", lambda text, key: lab_inside(models, text, key)),
                [i_text, i_model],
                [i_summary, i_maps],
                api_name="lab_inside",
            )
