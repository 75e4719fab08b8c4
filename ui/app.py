"""`build_demo()` returns the Gradio Blocks; `serve()` launches it with the app's safety settings."""

from __future__ import annotations

import html
import logging

import gradio as gr

from ui import catalog, handlers
from ui.choice import Choice
from ui.demo_inputs import EXAMPLES_DIR, REVIEW_EXAMPLES, TRANSLATE_EXAMPLES, example_images_by_kind
from ui.image_upload import ImageUpload
from ui.lab_tab import build_lab_tab

CONCURRENCY = 4  # model calls run in parallel per event; further requests wait in Gradio's queue
# Gradio keeps every session's last inputs and outputs (10,000 sessions by default), and each API
# call without a session is a new one: with caption overlays of ~0.4 MB that grew the server by
# ~50 MB a minute under load. The page keeps no state of its own worth more than this many sessions.
SESSIONS_KEPT = 200


CSS = """
/* Example buttons show their whole text rather than "su…". */
.gallery-item, .gallery-item * { white-space: normal !important; max-width: none !important; }
#translate-examples button, #review-examples button { text-align: left; }
"""
_COUNTER_JS = (
    f"(text) => `${{(text || '').length.toLocaleString('en')}} / {handlers.MAX_TEXT_CHARS:,} characters` + \
((text || '').length >= {handlers.MAX_TEXT_CHARS} ? ' · the box holds no more: the rest was cut' : '')"
)


def _shown_errors(action: str, fn):
    """Runs a handler, turning every failure into a message in the page (the app keeps serving).

    A refused input is expected: one line in the log. Anything else is a bug or an exhausted
    machine: its traceback is logged once (Gradio's own copy is turned off).
    """

    def run(*args):
        try:
            return fn(*args)
        except handlers.InputError as e:
            logging.getLogger(__name__).warning("%s refused: %s", action, e)
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from e  # shown as HTML
        except Exception as e:
            logging.getLogger(__name__).exception("%s failed", action)
            raise gr.Error(
                f"{action} failed ({type(e).__name__}); the server log has the details.",
                print_exception=False,
            ) from e

    return run


def _cleared_on_failure(event, outputs: list) -> None:
    """Empties every output of a failed request in the browser, so no earlier result sits beside
    the error as if it answered it."""
    event.failure(None, None, outputs, js=f"() => [{', '.join(['null'] * len(outputs))}]")


def _counter(box: gr.Textbox) -> None:
    """A live character count under a text box (counted in the browser: no request per key)."""
    counter = gr.Markdown(f"0 / {handlers.MAX_TEXT_CHARS:,} characters", elem_id=f"{box.elem_id}-count")
    box.change(None, box, counter, js=_COUNTER_JS)


def _tab_label(label: str, installed: bool) -> str:
    return label if installed else f"{label} (not installed)"


def _missing(keys: list[str]) -> None:
    for key in keys:
        gr.Markdown(catalog.missing_message(key))


def build_demo(models: dict) -> gr.Blocks:
    """The demo's page over already-loaded models (`catalog.load_models`); None marks a missing one.

    Args:
        models: catalog key → loaded model or None.

    Example:
    >>> build_demo(catalog.load_models("saved_models")).launch()  # doctest: +SKIP
    """
    translators = {key: models[key] for key in handlers.TRANSLATORS if models.get(key) is not None}
    first_translator = next(iter(translators), handlers.TRANSLATORS[0])
    captioner = models.get("caption")
    classifiers = {key: models.get(key) for key in ("sentiment_nsmc", "sentiment_imdb")}
    any_classifier = any(classifiers.values())

    def on_translate(text, mode, beam_size, length_penalty, temperature, model=first_translator):
        return handlers.translate(translators.get(model), text, mode, beam_size, length_penalty, temperature)

    def on_classify(text, choice):
        return handlers.classify(classifiers, text, choice)

    def on_caption(path, mode, beam_size):
        return handlers.caption(captioner, path, mode, beam_size)

    with gr.Blocks(title="seq2seq_app", analytics_enabled=False) as demo:  # no usage reports to Gradio
        gr.Markdown(
            "# seq2seq_app\nRecurrent encoder–decoder models, exported as SavedModels: "
            "translation (many-to-many), captioning (one-to-many), sentiment (many-to-one)."
        )
        with gr.Tab(_tab_label("Translate", bool(translators)), elem_id="tab-translate"):
            if not translators:
                _missing(["translate"])
            # Offered only when there is a choice.
            translator_choice = Choice(
                [(catalog.ENTRIES[key].title, key) for key in translators] or [first_translator],
                value=first_translator,
                label="Model",
                visible=len(translators) > 1,
                elem_id="translator",
            )
            text = gr.Textbox(
                label="Spanish",
                lines=2,
                max_length=handlers.MAX_TEXT_CHARS,
                interactive=bool(translators),
                elem_id="spanish",
            )
            _counter(text)
            with gr.Row():
                mode = Choice(list(handlers.DECODING_MODES), value="greedy", label="Decoding")
                beam_size = gr.Slider(1, 16, value=4, step=1, label="Beam size (beam)")
                length_penalty = gr.Slider(0.0, 2.0, value=0.6, step=0.1, label="Length penalty (beam)")
                temperature = gr.Slider(0.05, 2.0, value=0.7, step=0.05, label="Temperature (sample)")
            button = gr.Button(
                "Translate", variant="primary", interactive=bool(translators), elem_id="translate-button"
            )
            output = gr.Textbox(label="English", elem_id="translation")
            nbest = gr.Dataframe(
                headers=["score", "candidate"],
                label="n-best list (beam; score: length-normalised log-probability)",
                column_widths=["12%", "88%"],
                wrap=True,
                visible=False,  # greedy is the default, and only beam has an n-best list
                elem_id="nbest",
            )
            mode.change(lambda m: gr.update(visible=m == "beam"), mode, nbest, api_visibility="private")
            gr.Markdown("**Attention**: the weight each output word gave each source word")
            heatmap = gr.HTML(elem_id="attention")
            gr.Examples(TRANSLATE_EXAMPLES, inputs=text, elem_id="translate-examples")
            translated = button.click(
                _shown_errors("Translation", on_translate),
                [text, mode, beam_size, length_penalty, temperature, translator_choice],
                [output, nbest, heatmap],
                api_visibility="private",
            )
            _cleared_on_failure(translated, [output, nbest, heatmap])
            # The HTTP API's /translate keeps the five inputs it always had (older clients keep
            # working) and uses the first installed translator: an event of a button never shown.
            gr.Button(visible=False).click(
                _shown_errors("Translation", on_translate),
                [text, mode, beam_size, length_penalty, temperature],
                [output, nbest, heatmap],
                api_name="translate",
            )
        with gr.Tab(_tab_label("Caption", captioner is not None), elem_id="tab-caption"):
            if captioner is None:
                _missing(["caption"])
            gr.Markdown(catalog.CAPTIONER_SCOPE, elem_id="caption-scope")
            image = ImageUpload(
                type="filepath",
                label=f"Image (JPEG, PNG, GIF or BMP; ≤ {handlers.MAX_IMAGE_BYTES >> 20} MB)",
                interactive=captioner is not None,
                elem_id="caption-image",
            )
            with gr.Row():
                caption_mode = Choice(list(handlers.CAPTION_MODES), value="greedy", label="Decoding")
                caption_beam = gr.Slider(1, 16, value=3, step=1, label="Beam size (beam)")
            caption_button = gr.Button(
                "Caption", variant="primary", interactive=captioner is not None, elem_id="caption-button"
            )
            caption_text = gr.Textbox(label="Caption", elem_id="caption")
            gr.Markdown("**Where the model looked** for each word (dark: not looked at; legend below)")
            looked = gr.HTML(elem_id="looked")
            for label, images in example_images_by_kind():
                gr.Examples(images, inputs=image, label=label)
            captioned = caption_button.click(
                _shown_errors("Captioning", on_caption),
                [image, caption_mode, caption_beam],
                [caption_text, looked],
                api_name="caption",
            )
            _cleared_on_failure(captioned, [caption_text, looked])
        with gr.Tab(_tab_label("Sentiment", any_classifier), elem_id="tab-sentiment"):
            _missing([key for key, model in classifiers.items() if model is None])
            review = gr.Textbox(
                label="Review (Korean or English)",
                lines=3,
                max_length=handlers.MAX_TEXT_CHARS,
                interactive=any_classifier,
                elem_id="review",
            )
            _counter(review)
            choice = Choice(
                list(
                    zip(
                        ["auto: Korean → NSMC, otherwise IMDB", "NSMC (Korean)", "IMDB (English)"],
                        handlers.SENTIMENT_MODELS,
                    )
                ),
                value="auto",
                label="Model",
            )
            score_button = gr.Button(
                "Score", variant="primary", interactive=any_classifier, elem_id="score-button"
            )
            verdict = gr.Textbox(label="Verdict", elem_id="verdict")
            # gr.HTML shows no label, so the legend is a line of its own.
            gr.Markdown("**Tokens**: green moved the score towards positive, red towards negative")
            moves = gr.HTML(elem_id="moves")
            trajectory = gr.LinePlot(
                x="position",
                y="score",
                tooltip=["position", "token", "score"],
                y_lim=[0, 1],
                label="Score after each token",
                elem_id="trajectory",
            )
            gr.Examples(REVIEW_EXAMPLES, inputs=review, elem_id="review-examples")
            scored = score_button.click(
                _shown_errors("Scoring", on_classify),
                [review, choice],
                [verdict, moves, trajectory],
                api_name="classify",
            )
            _cleared_on_failure(scored, [verdict, moves, trajectory])
        build_lab_tab(models, _shown_errors)
        with gr.Tab("Models", elem_id="tab-models"):
            for entry in catalog.CATALOG:
                model = models.get(entry.key)
                if entry.optional and model is None:
                    continue
                with gr.Accordion(catalog.card_title(entry.key, model), open=True):
                    gr.Markdown(catalog.model_card(entry.key, model), elem_id=f"card-{entry.key}")
    return demo


def serve(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, **launch_options):
    """Launches with the app's limits: a queue, a per-event concurrency limit and an upload cap."""
    return demo.queue(default_concurrency_limit=CONCURRENCY).launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=handlers.MAX_IMAGE_BYTES,
        allowed_paths=[str(EXAMPLES_DIR)],
        css=CSS,
        state_session_capacity=SESSIONS_KEPT,
        **launch_options,
    )
