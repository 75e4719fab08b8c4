"""The models the demo serves: the folder each lives in, how it loads, and the command that trains it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from seq2seq_app.captioning.captioner_api import LoadedCaptioner
from seq2seq_app.core.loaded_model import LoadedModel
from seq2seq_app.sentiment.sentiment_api import LoadedSentimentClassifier
from seq2seq_app.translation.translator_api import LoadedTranslator


@dataclass(frozen=True)
class ModelEntry:
    """One servable model.

    Args:
        key: the name the app uses for it.
        folder: its SavedModel folder inside the models directory.
        loader: the Python API class that loads it.
        title: how the page names it.
        train_command: the command that trained the shipped model (shown when it is missing).
    """

    key: str
    folder: str
    loader: type[LoadedModel]
    title: str
    train_command: str


_SHARED = "../shared"
CATALOG = (
    ModelEntry(
        "translate",
        "translate_spa_en",
        LoadedTranslator,
        "Spanish → English translation",
        f"python -m training.translate --pairs {_SHARED}/data/translation/spa-eng/spa.txt --source-column 1 "
        "--target-column 0 --source-name Spanish --target-name English --data-credit 'Tatoeba (tatoeba.org) "
        "via manythings.org/anki spa-eng (2018), CC-BY 2.0 France' --run-dir runs/translate_spa_en "
        "--export-dir saved_models/translate_spa_en --epochs 40 --tokens-per-batch 2048 "
        "--learning-rate 0.002 --verbose 2",
    ),
    ModelEntry(
        "sentiment_nsmc",
        "sentiment_nsmc",
        LoadedSentimentClassifier,
        "Korean movie-review sentiment (NSMC)",
        f"python -m training.sentiment --tsv {_SHARED}/data/nsmc/ratings_train.txt --text-column document "
        "--data-name NSMC --data-credit 'Naver Sentiment Movie Corpus v1.0 (github.com/e9t/nsmc, Lucy Park), "
        "CC0 1.0; reviews scraped from Naver Movies' --unit char --vocab-size 4000 --bigram-vocab-size 40000 "
        "--dropout 0.4 --epochs 12 --patience 2 --run-dir runs/sentiment_nsmc --export-dir "
        "saved_models/sentiment_nsmc --verbose 2",
    ),
    ModelEntry(
        "sentiment_imdb",
        "sentiment_imdb",
        LoadedSentimentClassifier,
        "English movie-review sentiment (IMDB)",
        f"python -m training.sentiment --tsv {_SHARED}/data/imdb/imdb_train.tsv --text-column text "
        "--data-name IMDB --data-credit 'Large Movie Review Dataset v1.0 (Maas et al., ACL 2011), "
        "ai.stanford.edu/~amaas/data/sentiment' --unit word --vocab-size 20000 --bigram-vocab-size 30000 "
        "--max-tokens 400 --dropout 0.4 --batch-size 64 --validation-fraction 0.08 --test-fraction 0.08 "
        "--epochs 10 --patience 2 --run-dir runs/sentiment_imdb --export-dir saved_models/sentiment_imdb "
        "--verbose 2",
    ),
    ModelEntry(
        "caption",
        "caption_flickr8k",
        LoadedCaptioner,
        "Image captioning (Flickr8k)",
        f"python -m training.caption --flickr8k {_SHARED}/data/flickr8k --backbone mobilenet_v2 "
        f"--backbone-weights {_SHARED}/weights/mobilenet_v2_1.0_224_imagenet_dequant_int8_no_top.h5 "
        "--backbone-credit 'MobileNetV2 ImageNet weights rebuilt from Google'\"'\"'s int8 TF-Hub MobileNetV2 "
        "(google-coral/test_data, Apache-2.0)' --data-name Flickr8k --data-credit 'Flickr8k (Hodosh, Young & "
        "Hockenmaier, JAIR 2013), research use; images under Flickr'\"'\"'s terms; 875-image subset' --flip "
        "--units 256 --epochs 40 --patience 4 --run-dir runs/caption_flickr8k --export-dir "
        "saved_models/caption_flickr8k --verbose 2",
    ),
)
ENTRIES = {entry.key: entry for entry in CATALOG}


def load_models(models_dir: str | Path) -> dict[str, LoadedModel | None]:
    """Loads each SavedModel once; a missing one is None (the page says how to train it)."""
    found = {}
    for entry in CATALOG:
        path = Path(models_dir) / entry.folder
        found[entry.key] = entry.loader(path) if (path / "saved_model.pb").exists() else None
    return found


def not_installed(key: str) -> str:
    """A plain-text error for using a model that is not installed."""
    entry = ENTRIES[key]
    return (
        f"The {entry.title} model is not installed: train it with {entry.train_command.split(' --')[0]} "
        "(the Models tab shows the full command)."
    )


def missing_message(key: str) -> str:
    """What the page says instead of a model that is not installed (Markdown)."""
    entry = ENTRIES[key]
    command = entry.train_command.replace(" --", " \\\n    --")  # one flag a line
    return (
        f"**{entry.title}: not installed** (no `{entry.folder}/` in the models folder). Train it with "
        f"(data in `{_SHARED}/`, see README):\n\n```bash\n{command}\n```"
    )


def card_title(key: str, model: LoadedModel | None) -> str:
    """One line naming the model and whether (and where) it is installed."""
    title = ENTRIES[key].title
    if model is None:
        return f"{title} · not installed"
    size = sum(f.stat().st_size for f in model.path.rglob("*") if f.is_file())
    return f"{title} · {model.path} · {size / 1e6:.1f} MB"


def model_card(key: str, model: LoadedModel | None) -> str:
    """Markdown for the Models tab: the model's own card (data, metrics, command), or how to train it."""
    if model is None:
        return missing_message(key)
    readme = model.path / "README.md"
    card = readme.read_text(encoding="utf-8") if readme.exists() else "(this export has no README.md card)"
    return re.sub(r"^(#+)", r"##\1", card, flags=re.MULTILINE)  # its headings sit under the tab's
