"""The models the demo serves: the folder each lives in, how it loads, and the command that trains it."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from seq2seq_app.captioning.captioner_api import LoadedCaptioner
from seq2seq_app.core.loaded_model import SHIPPED_DIR, LoadedModel
from seq2seq_app.sentiment.sentiment_api import LoadedSentimentClassifier
from seq2seq_app.translation.translator_api import LoadedTranslator


@dataclass(frozen=True)
class ModelEntry:
    """One servable model.

    Args:
        key: the name the app uses for it.
        folder: its SavedModel folder inside the models directory (also its shipped name).
        loader: the Python API class that loads it.
        title: how the page names it.
        optional: an alternative to another model of its task, left off the page when missing.
    """

    key: str
    folder: str
    loader: type[LoadedModel]
    title: str
    optional: bool = False

    @property
    def train_command(self) -> str:
        """The command that trained the shipped model, from its model card (the one place it is
        written), or the bare CLI where the checkout ships no such model."""
        card = SHIPPED_DIR / self.folder / "model_card.json"
        if card.exists():
            return json.loads(card.read_text(encoding="utf-8"))["training"]["command"]
        return self.loader.train_command


CATALOG = (
    ModelEntry("translate", "translate_spa_en", LoadedTranslator, "Spanish → English translation"),
    ModelEntry(
        "translate_word",
        "translate_spa_en_word",
        LoadedTranslator,
        "Spanish → English translation, whole words (the earlier model)",
        optional=True,
    ),
    ModelEntry(
        "sentiment_nsmc", "sentiment_nsmc", LoadedSentimentClassifier, "Korean movie-review sentiment (NSMC)"
    ),
    ModelEntry(
        "sentiment_imdb", "sentiment_imdb", LoadedSentimentClassifier, "English movie-review sentiment (IMDB)"
    ),
    ModelEntry("caption", "caption_flickr8k", LoadedCaptioner, "Image captioning (Flickr8k)"),
)
CAPTIONER_SCOPE = (
    "**What this captioner knows**: it learned from 753 Flickr photos, nearly all of people and dogs "
    "outdoors (playing, running, climbing, in water or snow). Photos like those get roughly right "
    "captions; anything else (a cat, a cup, a street, food) gets a caption about people or dogs anyway."
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
        f"**{entry.title}: not installed** (no `{entry.folder}/` in the models folder). The shipped "
        "model was trained with this command (its data paths are those of the machine that trained it; "
        f"see docs/training.md):\n\n```bash\n{command}\n```"
    )


def card_title(key: str, model: LoadedModel | None) -> str:
    """One line naming the model and whether (and where) it is installed."""
    title = ENTRIES[key].title
    if model is None:
        return f"{title} · not installed"
    size = sum(f.stat().st_size for f in model.path.rglob("*") if f.is_file())
    return f"{title} · {model.path} · {size / 1e6:.1f} MB"


def model_card(key: str, model: LoadedModel | None) -> str:
    """Markdown for the Models tab: a compact card (task, data, size, headline metrics, the training
    command folded away) from the model's `model_card.json`, or how to train a missing model."""
    if model is None:
        return missing_message(key)
    card = model.card
    if not card:
        return "(this export has no model_card.json)"
    data, training = card.get("data", {}), card.get("training", {})
    facts = [
        ("Task", f"{card.get('task', '?')}: {card.get('description', '')}"),
        ("Data", data.get("credit", data.get("source", "?"))),
        ("Size", f"{card.get('export', {}).get('size_mb', '?')} MB" + _count(card)),
        ("Trained", _trained(training)),
    ]
    lines = [f"- **{name}**: {value}" for name, value in facts if value]
    split = card.get("metrics", {}).get("test_split", "")
    table = metrics_table(card.get("metrics", {}))
    measured = ["", f"Measured on {split}:" if split else "", "", table] if table else []
    command = html.escape(training.get("command", "?"), quote=False)
    fold = f"\n<details><summary>Training command</summary>\n\n<pre>{command}</pre>\n</details>"
    return "\n".join(lines + measured) + "\n" + fold


def metrics_table(metrics: dict) -> str:
    """A Markdown table of a card's metrics: one row per decoding or split, one column per metric,
    rounded to one decimal; timings and counts of items are left out, lone numbers go in a row of
    their own.

    Example:
    >>> print(metrics_table({"greedy": {"bleu": 48.913, "seconds": 3.7}, "beam4": {"bleu": 50.54}}))
    | | BLEU |
    |---|---|
    | greedy | 48.9 |
    | beam4 | 50.5 |
    """
    groups = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    lone = {k: v for k, v in metrics.items() if _is_number(v)}
    if lone:
        groups["other"] = lone
    columns = list(
        dict.fromkeys(m for values in groups.values() for m, v in values.items() if _headline(m, v))
    )
    if not columns:
        return ""
    rows = [f"| | {' | '.join(_METRIC_NAMES.get(c, c.replace('_', ' ')) for c in columns)} |"]
    rows.append("|---" * (len(columns) + 1) + "|")
    for group, values in groups.items():
        cells = [_rounded(values[c]) if _headline(c, values.get(c)) else "" for c in columns]
        rows.append(f"| {group} | {' | '.join(cells)} |")
    return "\n".join(rows)


_METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF", "accuracy": "accuracy %", "distinct_captions": "distinct"}
_NOT_HEADLINE = {"seconds", "reviews"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _headline(name: str, value) -> bool:
    return name not in _NOT_HEADLINE and _is_number(value)


def _rounded(value: float) -> str:
    return f"{value:.1f}" if isinstance(value, float) else f"{value:,}"


def _count(card: dict) -> str:
    parameters = card.get("hyperparameters", {}).get("parameters")
    return f" · {parameters / 1e6:.1f} M parameters" if _is_number(parameters) else ""


def _trained(training: dict) -> str:
    seconds = training.get("train_seconds")
    took = f"{seconds / 60:.0f} min" if isinstance(seconds, (int, float)) else "?"
    return f"{training.get('epochs', '?')} epochs in {took} on {training.get('machine', '?')}"
