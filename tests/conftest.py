"""Shared fixtures: a toy parallel corpus the tests write themselves and a tiny trained export."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tests.toy_data import (
    CAPTION_FLAGS,
    SENTIMENT_FLAGS,
    SUBWORD_FLAGS,
    TINY_FLAGS,
    mixture_flags,
    toy_pairs,
    toy_reviews,
    write_pair_file,
    write_review_tsv,
)

# Fixtures that train a model through a CLI once per session, modules that start servers, browsers or
# worker processes, and the lab experiments' doctests (each trains several models; tests/test_lab.py
# runs them too): tests using them are `slow`, so `pytest -m "not slow"` is the quick inner loop.
TRAINED_FIXTURES = {"trained_export", "subword_export", "sentiment_export", "caption_export"}
SLOW_MODULES = {"test_ui_api", "test_ui_browser", "test_training_cli"}


def _slow(item) -> bool:
    if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.stem in SLOW_MODULES:
        return True
    return item.path.parent.name == "lab" and item.name.endswith("_experiment")


def pytest_collection_modifyitems(items):
    for item in items:
        if _slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def float32_policy():
    """The training CLIs set Keras's global precision policy; no test inherits another's."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


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
            [
                "--pairs",
                str(toy_corpus),
                "--run-dir",
                str(root / "run"),
                "--export-dir",
                str(root / "export"),
                *TINY_FLAGS,
            ]
        )
    )
    return root / "export", card


@pytest.fixture(scope="session")
def subword_export(tmp_path_factory, toy_corpus) -> tuple[Path, dict]:
    """A tiny subword translator trained once per session on the toy corpus mixed with weighted
    "news" and tagged "back-translated" pairs (`mixture_flags`)."""
    from training import translate

    root = tmp_path_factory.mktemp("toy_subword_run")
    flags = ["--pairs", str(toy_corpus), *mixture_flags(toy_corpus.parent)]
    flags += ["--run-dir", str(root / "run"), "--export-dir", str(root / "export")]
    card = translate.run(translate.build_parser().parse_args([*flags, *TINY_FLAGS, *SUBWORD_FLAGS]))
    return root / "export", card


@pytest.fixture(scope="session")
def review_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reviews") / "reviews.tsv"
    # Malformed rows: a missing column, an empty review and a label that is not 0/1.
    return write_review_tsv(path, toy_reviews(800), extra_lines=("99\tno label", "100\t\t1", "101\t좋다\t5"))


@pytest.fixture(scope="session")
def sentiment_export(tmp_path_factory, review_file) -> tuple[Path, dict]:
    """Trains and exports a tiny sentiment classifier once per test session through the real CLI."""
    from training import sentiment

    root = tmp_path_factory.mktemp("sentiment_run")
    card = sentiment.run(
        sentiment.build_parser().parse_args(
            [
                "--tsv",
                str(review_file),
                "--run-dir",
                str(root / "run"),
                "--export-dir",
                str(root / "export"),
                *SENTIMENT_FLAGS,
            ]
        )
    )
    return root / "export", card


@pytest.fixture(scope="session")
def caption_export(tmp_path_factory) -> tuple[Path, dict]:
    """Trains and exports a small shapes captioner once per test session through the real CLI."""
    from training import caption

    root = tmp_path_factory.mktemp("caption_run")
    card = caption.run(
        caption.build_parser().parse_args(
            ["--run-dir", str(root / "run"), "--export-dir", str(root / "export"), *CAPTION_FLAGS]
        )
    )
    return root / "export", card
