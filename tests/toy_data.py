"""Tiny data the tests build themselves: a toy parallel corpus, toy reviews, and the flags that
train tiny models on them through the real CLIs."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from pathlib import Path

# A toy "Spanish" with a fixed word-for-word English translation, enough structure for a few
# epochs of training to learn something and small enough to train in seconds.
LEXICON = {
    "el": "the",
    "gato": "cat",
    "perro": "dog",
    "come": "eats",
    "bebe": "drinks",
    "agua": "water",
    "pan": "bread",
    "rojo": "red",
    "grande": "big",
    "ve": "sees",
    "niño": "boy",
    "casa": "house",
    "Tom": "Tom",
    "María": "Mary",
}


SUBJECTS = ["el gato", "el perro", "el niño", "Tom", "María"]


VERBS = ["come", "bebe", "ve"]


OBJECTS = ["agua", "pan", "el gato", "la casa", "el perro"]


def toy_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}".split()
        english = " ".join(LEXICON.get(w, w) for w in words if w != "la")
        english = english.replace(" house", " the house") if "la casa" in " ".join(words) else english
        mark = rng.choice([".", "?"])
        source = " ".join(words) + (" ?" if mark == "?" else " .")
        source = ("¿" + source) if mark == "?" else source
        pairs.append((english[0].upper() + english[1:] + mark, source[0].upper() + source[1:]))
    return pairs


def pair_lines(pairs, extra_lines: tuple[str, ...] = ()) -> str:
    return "\n".join([f"{en}\t{es}" for en, es in pairs] + list(extra_lines)) + "\n"


def write_pair_file(path: Path, pairs, extra_lines: tuple[str, ...] = ()) -> Path:
    path.write_text(pair_lines(pairs, extra_lines), encoding="utf-8")
    return path


def write_once(path: Path, text: str) -> None:
    """Writes `path` unless it exists, atomically: test workers running side by side share it."""
    if not path.exists():
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)


TINY_FLAGS = [
    "--units",
    "24",
    "--embedding-dim",
    "16",
    "--epochs",
    "3",
    "--verbose",
    "0",
    "--tokens-per-batch",
    "512",
    "--checkpoint-every",
    "10",
    "--mixed-precision",
    "off",
    "--validation-fraction",
    "0.1",
    "--test-fraction",
    "0.1",
    # Each run's validation BLEU costs an export trace; the shared trained_export turns it on.
    "--val-bleu-sentences",
    "0",
]


# On top of TINY_FLAGS: a subword translator, its piece vocabularies about the toy alphabet's size.
SUBWORD_FLAGS = ["--text-unit", "subword", "--source-vocab-size", "60", "--target-vocab-size", "60"]


def mixture_flags(directory: Path) -> list[str]:
    """Writes (the same each time) a line-aligned "news" corpus and a "back-translated" pair file into
    `directory`; returns the flags adding them to a run, news twice and half the synthetic pairs."""
    news = toy_pairs(60, seed=11)
    write_once(directory / "news.es", "".join(f"{es}\n" for _, es in news))
    write_once(directory / "news.en", "".join(f"{en}\n" for en, _ in news))
    back = directory / "back.tsv"
    write_once(back, pair_lines(toy_pairs(80, seed=12)))
    return ["--aligned", f"{directory / 'news'}*2", "--synthetic-pairs", f"{back}*0.5"]


# Toy Korean-style reviews: one sentiment word among neutral ones, sometimes without spaces.
POSITIVE_WORDS = ["재밌다", "최고", "감동적", "좋아요", "great"]


NEGATIVE_WORDS = ["노잼", "최악", "지루해", "별로", "awful"]


NEUTRAL_WORDS = ["영화", "배우", "진짜", "이번", "스토리", "연기", "그냥", "movie"]


SENTIMENT_FLAGS = [
    "--units",
    "24",
    "--embedding-dim",
    "16",
    "--epochs",
    "6",
    "--verbose",
    "0",
    "--batch-size",
    "32",
    "--checkpoint-every",
    "10",
    "--mixed-precision",
    "off",
    "--validation-fraction",
    "0.1",
    "--test-fraction",
    "0.1",
    "--vocab-size",
    "200",
    "--bigram-vocab-size",
    "400",
    "--learning-rate",
    "0.01",
]


def toy_reviews(n: int, seed: int = 0) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    reviews = []
    for i in range(n):
        label = i % 2
        words = rng.sample(NEUTRAL_WORDS, rng.randint(1, 4))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE_WORDS if label else NEGATIVE_WORDS))
        reviews.append(
            ((" " if rng.random() < 0.7 else "").join(words) + rng.choice(["", "!", "..", " ㅋㅋ"]), label)
        )
    return reviews


def review_lines(reviews, extra_lines: tuple[str, ...] = ()) -> str:
    lines = ["id\tdocument\tlabel"] + [f"{i}\t{text}\t{label}" for i, (text, label) in enumerate(reviews)]
    return "\n".join(lines + list(extra_lines)) + "\n"


def write_review_tsv(path: Path, reviews, extra_lines: tuple[str, ...] = ()) -> Path:
    path.write_text(review_lines(reviews, extra_lines), encoding="utf-8")
    return path


# A captioner that must look at the image: coloured shapes, described by colour, shape and place.
CAPTION_FLAGS = [
    "--synthetic",
    "1000",
    "--backbone",
    "grid",
    "--image-size",
    "64",
    "--units",
    "64",
    "--embedding-dim",
    "32",
    "--epochs",
    "12",
    "--patience",
    "30",
    "--verbose",
    "0",
    "--mixed-precision",
    "off",
    "--learning-rate",
    "0.01",
    "--dropout",
    "0",
    "--batch-size",
    "32",
    "--validation-fraction",
    "0.1",
    "--test-fraction",
    "0.1",
]


def backed_up_epoch(run_dir: Path) -> int:
    """The epoch a run's backup resumes from (the number of epochs it has finished); 0 if none."""
    from training.callbacks import backup_path

    try:
        return json.loads((backup_path(run_dir) / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError):  # not written yet, or caught mid-write
        return 0


def wait_for_a_backed_up_epoch(run_dir: Path, processes: list[subprocess.Popen], timeout: float) -> None:
    """Waits until the run's backup holds a finished epoch while `processes` still run."""
    deadline = time.time() + timeout
    while time.time() < deadline and all(p.poll() is None for p in processes):
        if backed_up_epoch(run_dir) >= 1:
            return
        time.sleep(0.1)
    raise AssertionError("the run ended, or backed up no finished epoch, before it could be killed")


def first_epoch_trained(keras_output: str) -> int:
    """The first "Epoch k/N" Keras printed (with --verbose 1 or 2)."""
    found = re.search(r"^Epoch (\d+)/\d+", keras_output, re.M)
    assert found, keras_output[-2000:]
    return int(found.group(1))
