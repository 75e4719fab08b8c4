"""Shared fixtures: a toy parallel corpus the tests write themselves and a tiny trained export."""

from __future__ import annotations

import os
import random
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

# A toy "Spanish" with a fixed word-for-word English translation, enough structure for a few
# epochs of training to learn something and small enough to train in seconds.
LEXICON = {
    "el": "the", "gato": "cat", "perro": "dog", "come": "eats", "bebe": "drinks",
    "agua": "water", "pan": "bread", "rojo": "red", "grande": "big", "ve": "sees",
    "niño": "boy", "casa": "house", "Tom": "Tom", "María": "Mary",
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


def write_pair_file(path: Path, pairs, extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [f"{en}\t{es}" for en, es in pairs] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY_FLAGS = [
    "--units", "24", "--embedding-dim", "16", "--epochs", "3", "--verbose", "0",
    "--tokens-per-batch", "512", "--checkpoint-every", "10", "--mixed-precision", "off",
    "--validation-fraction", "0.1", "--test-fraction", "0.1",
]


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "toy.txt"
    # One malformed line (no tab) and one with an empty side: counted and skipped.
    return write_pair_file(path, toy_pairs(600), extra_lines=("no tab here", "Empty.\t"))


@pytest.fixture(scope="session")
def trained_export(tmp_path_factory, toy_corpus) -> tuple[Path, dict]:
    """Trains and exports a tiny translator once per test session through the real CLI."""
    from training import translate

    root = tmp_path_factory.mktemp("toy_run")
    card = translate.run(
        translate.build_parser().parse_args(
            ["--pairs", str(toy_corpus), "--run-dir", str(root / "run"),
             "--export-dir", str(root / "export"), *TINY_FLAGS]
        )
    )
    return root / "export", card
