"""Shared fixtures: a toy parallel corpus the tests write themselves and a tiny trained export."""

from __future__ import annotations

import json
import os
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from filelock import FileLock

from tests.fast_tf import grappler_off
from tests.toy_data import (
    CAPTION_FLAGS,
    SENTIMENT_FLAGS,
    SUBWORD_FLAGS,
    TINY_FLAGS,
    mixture_flags,
    pair_lines,
    review_lines,
    toy_pairs,
    toy_reviews,
    write_once,
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


def pytest_configure(config):
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return  # pytest-xdist's controller runs no test: it need not import TensorFlow
    grappler_off()  # see tests/fast_tf.py


def pytest_collection_modifyitems(items):
    for item in items:
        if _slow(item):
            item.add_marker(pytest.mark.slow)
    # Modules with slow tests first: the suite's longest tests (a minute or more each) are slow
    # ones, and one started last keeps one pytest-xdist worker busy while the others have nothing
    # left to take. Whole modules move, so a module's fixtures are still built once.
    slow_modules = {item.path for item in items if _slow(item)}
    items.sort(key=lambda item: item.path not in slow_modules)


@pytest.fixture(autouse=True)
def float32_policy():
    """The training CLIs set Keras's global precision policy; no test inherits another's."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


def shared_dir(tmp_path_factory) -> Path:
    """The session's temporary directory, shared by every pytest-xdist worker.

    Under pytest-xdist every worker has its own session (and temporary directory, inside this
    one), so a session fixture would train once per worker; the shared fixtures are built here
    instead, by the first worker to ask, while the others wait on a lock and reuse them.
    """
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


def built_once(tmp_path_factory, name: str, build: Callable[[list[str]], dict]) -> tuple[Path, dict]:
    """`build(flags)` runs a training CLI with `flags` (its run and export directories added) and
    returns the card; returns the export's path and the card, built once for all workers."""
    base = shared_dir(tmp_path_factory)
    root = base / name
    with FileLock(f"{root}.lock"):
        card_file, failed = base / f"{name}.card.json", base / f"{name}.failed"
        if failed.exists():  # another worker's build failed: its error is reported there, once
            pytest.fail(f"building {name} failed in another worker:\n{failed.read_text()}")
        if not card_file.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            try:
                card = build(["--run-dir", str(root / "run"), "--export-dir", str(root / "export")])
            except BaseException:
                failed.write_text(traceback.format_exc())
                raise
            card_file.write_text(json.dumps(card))
        return root / "export", json.loads(card_file.read_text())


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> Path:
    # Shared, so a run trained by one worker resumes in another with the same --pairs.
    directory = shared_dir(tmp_path_factory) / "data"
    directory.mkdir(exist_ok=True)
    path = directory / "toy.txt"
    # One malformed line (no tab) and one with an empty side: counted and skipped.
    write_once(path, pair_lines(toy_pairs(600), extra_lines=("no tab here", "Empty.\t")))
    return path


@pytest.fixture(scope="session")
def trained_export(tmp_path_factory, toy_corpus) -> tuple[Path, dict]:
    """Trains and exports a tiny translator once per test session through the real CLI."""
    from training import translate

    def build(dirs: list[str]) -> dict:
        return translate.run(
            translate.build_parser().parse_args(
                ["--pairs", str(toy_corpus), *dirs, *TINY_FLAGS, "--val-bleu-sentences", "30"]
            )
        )

    return built_once(tmp_path_factory, "toy_run", build)


@pytest.fixture(scope="session")
def subword_export(tmp_path_factory, toy_corpus) -> tuple[Path, dict]:
    """A tiny subword translator trained once per session on the toy corpus mixed with weighted
    "news" and tagged "back-translated" pairs (`mixture_flags`)."""
    from training import translate

    def build(dirs: list[str]) -> dict:
        flags = ["--pairs", str(toy_corpus), *mixture_flags(toy_corpus.parent), *dirs]
        return translate.run(translate.build_parser().parse_args([*flags, *TINY_FLAGS, *SUBWORD_FLAGS]))

    return built_once(tmp_path_factory, "toy_subword_run", build)


@pytest.fixture(scope="session")
def review_file(tmp_path_factory) -> Path:
    directory = shared_dir(tmp_path_factory) / "reviews"
    directory.mkdir(exist_ok=True)
    path = directory / "reviews.tsv"
    # Malformed rows: a missing column, an empty review and a label that is not 0/1.
    write_once(path, review_lines(toy_reviews(800), extra_lines=("99\tno label", "100\t\t1", "101\t좋다\t5")))
    return path


@pytest.fixture(scope="session")
def sentiment_export(tmp_path_factory, review_file) -> tuple[Path, dict]:
    """Trains and exports a tiny sentiment classifier once per test session through the real CLI."""
    from training import sentiment

    def build(dirs: list[str]) -> dict:
        flags = ["--tsv", str(review_file), *dirs, *SENTIMENT_FLAGS]
        return sentiment.run(sentiment.build_parser().parse_args(flags))

    return built_once(tmp_path_factory, "sentiment_run", build)


@pytest.fixture(scope="session")
def caption_export(tmp_path_factory) -> tuple[Path, dict]:
    """Trains and exports a small shapes captioner once per test session through the real CLI."""
    from training import caption

    def build(dirs: list[str]) -> dict:
        return caption.run(caption.build_parser().parse_args([*dirs, *CAPTION_FLAGS]))

    return built_once(tmp_path_factory, "caption_run", build)
