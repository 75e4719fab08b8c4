"""`Choice`: Gradio's radio buttons, refusing a value outside its choices with one log line."""

from __future__ import annotations

import logging

import gradio as gr


class Choice(gr.Radio):
    """`gr.Radio` (same page widget) whose refusal of an unknown value is an expected user error.

    Only an API caller can send a value the buttons do not offer; Gradio refuses it with a message,
    and would also print a traceback to the server console for it. Here it logs one line instead.

    Example:
    >>> Choice(["greedy", "beam"], value="greedy", label="Decoding")  # doctest: +SKIP
    """

    is_template = True  # use gr.Radio's front end and signature

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error as e:
            logging.getLogger(__name__).warning("%s refused: %s", self.label or "choice", e.message)
            raise gr.Error(e.message, print_exception=False) from None
