import json
import shlex
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.toy_data import SENTIMENT_FLAGS
from training import reexport
from training.reexport import sentiment


def _copy(sentiment_export, review_file, tmp_path):
    folder = tmp_path / "sentiment_tiny"
    shutil.copytree(sentiment_export[0], folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    # The fixture ran in-process, so its card names pytest; the re-export reads the test split
    # from the training command.
    flags = ["--tsv", str(review_file), *SENTIMENT_FLAGS]
    card["training"]["command"] = shlex.join(["python", "-m", "training.sentiment", *flags])
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def test_reexport_stores_float16_and_keeps_the_scores(sentiment_export, review_file, tmp_path):
    folder = _copy(sentiment_export, review_file, tmp_path)
    reviews = tf.constant(["good fun film", "boring and bad", "", "🙂"])
    before = tf.saved_model.load(str(folder)).signatures["classify"](text=reviews)
    card = sentiment.reexport(folder)
    after = tf.saved_model.load(str(folder)).signatures["classify"](text=reviews)
    np.testing.assert_allclose(after["score"].numpy(), before["score"].numpy(), atol=1e-3)
    assert after["tokens"].numpy().tolist() == before["tokens"].numpy().tolist()
    written = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    assert written == card
    assert written["metrics"]["test"]["reviews"] == sentiment_export[1]["metrics"]["test"]["reviews"]
    assert written["export"]["weights"]["float16"] > 10 * written["export"]["weights"]["float32"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentiment_tiny"]  # no temporary folder left


def test_reexport_refuses_a_model_it_cannot_rebuild(sentiment_export, review_file, tmp_path):
    folder = _copy(sentiment_export, review_file, tmp_path)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["training"]["command"] += " --units 25"  # one unit more than it was trained with
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="variable .*: the SavedModel has"):
        sentiment.reexport(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files


def test_reexport_needs_the_training_command_in_the_card(sentiment_export, tmp_path):
    copy = tmp_path / "sentiment"
    shutil.copytree(sentiment_export[0], copy)  # trained in-process: its card names pytest
    with pytest.raises(SystemExit, match="not a `python -m training.sentiment` command"):
        reexport.main([str(copy)])


def test_a_float16_export_that_strays_never_replaces_the_model(
    sentiment_export, review_file, tmp_path, monkeypatch
):
    folder = _copy(sentiment_export, review_file, tmp_path)
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    monkeypatch.setattr(sentiment, "MAX_SCORE_CHANGE", -1.0)  # no export can be this close
    with pytest.raises(ValueError, match="scores differently"):
        sentiment.reexport(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentiment_tiny"]
