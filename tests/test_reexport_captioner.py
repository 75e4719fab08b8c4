import json
import shlex
import shutil

import pytest
import tensorflow as tf

from tests.toy_data import CAPTION_FLAGS
from training import reexport
from training.reexport import captioner

EXAMPLES = captioner.EXAMPLES[:2]


def _copy(caption_export, tmp_path):
    folder = tmp_path / "caption_tiny"
    shutil.copytree(caption_export[0], folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    # The fixture ran in-process, so its card names pytest; the re-export reads the test split
    # from the training command.
    card["training"]["command"] = shlex.join(["python", "-m", "training.caption", *CAPTION_FLAGS])
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def test_reexport_stores_float16_keeps_captions_and_measures_itself(caption_export, tmp_path):
    folder = _copy(caption_export, tmp_path)
    images = tf.constant([p.read_bytes() for p in EXAMPLES] + [b"\x89PNG\r\n\x1a\n" + bytes(40)])
    before = tf.saved_model.load(str(folder)).signatures["caption"](image=images)["caption"].numpy()
    card = captioner.reexport(folder, EXAMPLES)
    after = tf.saved_model.load(str(folder)).signatures["caption"](image=images)
    assert after["caption"].numpy().tolist() == before.tolist()  # float16 rounding changes no word here
    assert after["status"].numpy().tolist()[-1] == b"corrupt"
    written = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    assert written == card
    old_metrics = caption_export[1]["metrics"]
    assert written["metrics"]["test_split"] == old_metrics["test_split"]
    assert abs(written["metrics"]["greedy"]["bleu4"] - old_metrics["greedy"]["bleu4"]) < 5
    export = written["export"]
    assert export["weights"]["float16"] > 10 * export["weights"]["float32"]
    assert (
        export["reexported"]["same_example_captions"]
        == f"{2 * len(EXAMPLES)} of {2 * len(EXAMPLES)} (greedy and beam 3)"
    )
    assert "reexported" in (folder / "README.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caption_tiny"]  # no temporary folder left


def test_reexport_fails_loudly_and_changes_nothing_on_a_mismatch(caption_export, tmp_path):
    folder = _copy(caption_export, tmp_path)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["hyperparameters"]["units"] += 1
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="variable .*: the SavedModel has"):
        captioner.reexport(folder, EXAMPLES)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    with pytest.raises(SystemExit, match="only translate, caption, sentiment models"):
        reexport.main([str(_lab_like(tmp_path))])


def test_a_float16_export_whose_bleu_falls_never_replaces_the_model(caption_export, tmp_path, monkeypatch):
    folder = _copy(caption_export, tmp_path)
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    monkeypatch.setattr(captioner, "MAX_BLEU_DROP", -1000.0)  # demands a rise no export can give
    with pytest.raises(ValueError, match="greedy BLEU-4 is .*, the old one's"):
        captioner.reexport(folder, EXAMPLES)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caption_tiny"]


def _lab_like(tmp_path):
    folder = tmp_path / "not_a_shipped_task"
    folder.mkdir()
    (folder / "model_card.json").write_text(json.dumps({"task": "lab"}), encoding="utf-8")
    return folder
