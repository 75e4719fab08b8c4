"""`build_demo()` returns the Gradio Blocks; `python -m ui` launches it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from seq2seq_app.captioner_api import LoadedCaptioner
from seq2seq_app.sentiment_api import LoadedSentimentClassifier
from seq2seq_app.translator_api import LoadedTranslator
from ui import handlers

EXAMPLES = ["¿Dónde está la biblioteca?", "Tom no quiere ir a la escuela mañana.", "Me gusta mucho leer libros."]
REVIEW_EXAMPLES = ["와! 진짜 화날 정도로 재밌네요", "너무재밓었다그래서보는것을추천한다", "처음엔 지루했는데 마지막 30분은 최고였다",
                   "배우들 연기는 좋았지만 스토리가 엉망이라 시간이 아까웠다"]
MODELS = {  # name in the UI → (folder in the models directory, loader)
    "translate": ("translate_spa_en", LoadedTranslator),
    "sentiment": ("sentiment_nsmc", LoadedSentimentClassifier),
    "caption": ("caption_flickr8k", LoadedCaptioner),
}


def load_models(models_dir: str | Path) -> dict:
    """Loads each SavedModel once; a missing model is None (its tab says how to train it)."""
    models = {}
    for name, (folder, loader) in MODELS.items():
        path = Path(models_dir) / folder
        models[name] = loader(path) if (path / "saved_model.pb").exists() else None
    return models


def _shown_errors(action: str, fn):
    """Runs a handler, turning every failure into a message in the page (the app keeps serving)."""

    def run(*args):
        try:
            return fn(*args)
        except handlers.InputError as e:
            raise gr.Error(str(e)) from e
        except Exception as e:
            raise gr.Error(f"{action} failed: {type(e).__name__}: {e}") from e

    return run


def build_demo(models: dict) -> gr.Blocks:
    translator, classifier, captioner = models.get("translate"), models.get("sentiment"), models.get("caption")

    def on_translate(text, mode, beam_size, length_penalty, temperature):
        return handlers.translate(translator, text, mode, beam_size, length_penalty, temperature)

    def on_classify(text):
        return handlers.classify(classifier, text)

    def on_caption(path, mode, beam_size):
        image = Path(path).read_bytes() if path else None
        return handlers.caption(captioner, image, mode, beam_size)

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
            button.click(_shown_errors("Translation", on_translate),
                         [text, mode, beam_size, length_penalty, temperature], [output, nbest],
                         api_name="translate", concurrency_limit=4)
        with gr.Tab("Sentiment (Korean reviews)"):
            if classifier is None:
                gr.Markdown("The sentiment model is not installed. Train it with "
                            "`python -m training.sentiment` (see README).")
            review = gr.Textbox(label="Review", lines=2, max_length=handlers.MAX_TEXT_CHARS)
            score_button = gr.Button("Score", variant="primary", interactive=classifier is not None)
            verdict = gr.Textbox(label="Verdict", elem_id="verdict")
            moves = gr.HighlightedText(label="How each character moved the score (red: towards negative, "
                                             "green: towards positive)", color_map=None)
            trajectory = gr.Dataframe(headers=["position", "token", "score"], label="Score after each token")
            gr.Examples(REVIEW_EXAMPLES, inputs=review)
            score_button.click(_shown_errors("Scoring", on_classify), [review], [verdict, moves, trajectory],
                               api_name="classify", concurrency_limit=4)
        with gr.Tab("Caption"):
            if captioner is None:
                gr.Markdown("The captioning model is not installed. Train it with "
                            "`python -m training.caption` (see README).")
            # image_mode=None: the model gets the uploaded file itself, not Gradio's RGB re-encoding.
            image = gr.Image(type="filepath", image_mode=None, label="Image")
            with gr.Row():
                caption_mode = gr.Radio(["greedy", "beam"], value="greedy", label="Decoding")
                caption_beam = gr.Slider(1, 16, value=3, step=1, label="Beam size")
            caption_button = gr.Button("Caption", variant="primary", interactive=captioner is not None)
            caption_text = gr.Textbox(label="Caption", elem_id="caption")
            looked = gr.Gallery(label="Where the model looked for each word", columns=5)
            caption_button.click(_shown_errors("Captioning", on_caption), [image, caption_mode, caption_beam],
                                 [caption_text, looked], api_name="caption", concurrency_limit=4)
    return demo
