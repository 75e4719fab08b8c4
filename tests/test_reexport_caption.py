import json
import shutil

import pytest
import tensorflow as tf

from training import reexport_caption as reexport

EXAMPLES = reexport.EXAMPLES[:2]


def _copy(caption_export, tmp_path):
    folder = tmp_path / "caption_tiny"
    shutil.copytree(caption_export[0], folder)
    (folder / "README.md").write_text("# A tiny captioner\n", encoding="utf-8")
    return folder


def test_reexport_keeps_captions_and_notes_itself_in_the_card(caption_export, tmp_path):
    folder = _copy(caption_export, tmp_path)
    images = tf.constant([p.read_bytes() for p in EXAMPLES] + [b"\x89PNG\r\n\x1a\n" + bytes(40)])
    before = tf.saved_model.load(str(folder)).signatures["caption"](image=images)["caption"].numpy()
    card = reexport.reexport(folder, EXAMPLES)
    after = tf.saved_model.load(str(folder)).signatures["caption"](image=images)
    assert after["caption"].numpy().tolist() == before.tolist()
    assert after["status"].numpy().tolist()[-1] == b"corrupt"
    written = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    assert written == card and written["metrics"] == caption_export[1]["metrics"]
    assert "reexport" in written["export"]["reexported"]["command"]
    assert "## Re-export" in (folder / "README.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caption_tiny"]  # no temporary folder left


def test_reexport_fails_loudly_and_changes_nothing_on_a_mismatch(caption_export, tmp_path):
    folder = _copy(caption_export, tmp_path)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["hyperparameters"]["units"] += 1
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="variable .*: the SavedModel has"):
        reexport.reexport(folder, EXAMPLES)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    with pytest.raises(ValueError, match="only captioners"):
        reexport.main([str(_sentiment_like(tmp_path))])


def _sentiment_like(tmp_path):
    folder = tmp_path / "not_a_captioner"
    folder.mkdir()
    (folder / "model_card.json").write_text(json.dumps({"task": "sentiment"}), encoding="utf-8")
    return folder
