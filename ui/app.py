"""`build_demo()` returns the Gradio Blocks; `python -m ui` launches it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from seq2seq_app.translator_api import LoadedTranslator
from ui import handlers

EXAMPLES = ["¿Dónde está la biblioteca?", "Tom no quiere ir a la escuela mañana.", "Me gusta mucho leer libros."]


def load_models(models_dir: str | Path) -> dict:
    """Loads each SavedModel once; a missing model is None (its tab says how to train it)."""
    path = Path(models_dir) / "translate_spa_en"
    return {"translate": LoadedTranslator(path) if (path / "saved_model.pb").exists() else None}


def build_demo(models: dict) -> gr.Blocks:
    translator = models.get("translate")

    def on_translate(text, mode, beam_size, length_penalty, temperature):
        try:
            return handlers.translate(translator, text, mode, beam_size, length_penalty, temperature)
        except handlers.InputError as e:
            raise gr.Error(str(e)) from e
        except Exception as e:  # a model failure must show in the page, not end the session
            raise gr.Error(f"Translation failed: {type(e).__name__}: {e}") from e

    with gr.Blocks(title="seq2seq_app") as demo:
        gr.Markdown("# seq2seq_app\nRecurrent encoder–decoder models, exported as SavedModels.")
        with gr.Tab("Translate (Spanish → English)"):
            if translator is None:
                gr.Markdown("The translation model is not installed. Train it with "
                            "`python -m training.translate` (see README).")
            text = gr.Textbox(label="Spanish", lines=2, max_length=handlers.MAX_TEXT_CHARS)
            with gr.Row():
                mode = gr.Radio(list(handlers.DECODING_MODES), value="greedy", label="Decoding")
                beam_size = gr.Slider(1, 16, value=4, step=1, label="Beam size")
                length_penalty = gr.Slider(0.0, 2.0, value=0.6, step=0.1, label="Length penalty")
                temperature = gr.Slider(0.05, 2.0, value=0.7, step=0.05, label="Temperature")
            button = gr.Button("Translate", variant="primary", interactive=translator is not None)
            output = gr.Textbox(label="English", elem_id="translation")
            nbest = gr.Dataframe(headers=["candidate", "score"], label="n-best (beam)")
            gr.Examples(EXAMPLES, inputs=text)
            button.click(on_translate, [text, mode, beam_size, length_penalty, temperature], [output, nbest],
                         api_name="translate", concurrency_limit=4)
    return demo
