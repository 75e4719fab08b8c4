"""`ImageUpload`: Gradio's image box, handing the handler the uploaded file unopened."""

from __future__ import annotations

import gradio as gr
from gradio.data_classes import ImageData


class ImageUpload(gr.Image):
    """`gr.Image` (same page widget) whose value is the uploaded file's path, never opened here.

    Gradio's own preprocessing opens every upload with PIL, so a file that is not an image fails
    before our handler runs, with a message the page does not show. The caption handler checks
    the bytes itself (size, kind, decodability) and says what is wrong.

    Example:
    >>> ImageUpload(label="Image", type="filepath")  # doctest: +SKIP
    """

    is_template = (
        True  # use gr.Image's front end (and its __init__: the page config is built from its signature)
    )

    def preprocess(self, payload: ImageData | None) -> str | None:
        return None if payload is None else str(payload.path)
