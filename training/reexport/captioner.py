"""A shipped captioner SavedModel re-exported through the current export code, without its training run.

A SavedModel's graphs are fixed when it is written: a shipped captioner keeps the image decoding of
its day until it is exported again. The Keras weights of the shipped models are not in the
repository, so this rebuilds the Keras models from the model card, copies every variable from the
SavedModel (same order, names and shapes, or it stops), exports into a temporary folder, checks
that the new export captions example images exactly as the old one did, and only then replaces
the folder.

    python -m training.reexport saved_models/caption_flickr8k
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from seq2seq_app.captioning.backbones import make_backbone
from seq2seq_app.captioning.captioner import Captioner
from seq2seq_app.captioning.captioner_export import CaptionerExport
from seq2seq_app.core.vocabulary import RESERVED, Vocabulary
from training.reexport.weights import copy_variables

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "ui" / "examples").glob("*.jpg"))
BEAM = 3


def vocabulary_tokens(folder: Path, size: int) -> list[str]:
    """The caption vocabulary, read from the string constant of `size` tokens in the exported graphs
    (the export stores it as a constant, not as a variable or an asset)."""
    graph = saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())
    found = set()
    for meta in graph.meta_graphs:
        functions = [node for function in meta.graph_def.library.function for node in function.node_def]
        for node in list(meta.graph_def.node) + functions:
            value = node.attr["value"].tensor
            dims = [d.size for d in value.tensor_shape.dim]
            if node.op == "Const" and value.dtype == tf.string.as_datatype_enum and dims == [size]:
                found.add(tuple(t.decode("utf-8") for t in tf.make_ndarray(value).tolist()))
    if len(found) != 1 or list(next(iter(found)))[: len(RESERVED)] != list(RESERVED):
        raise ValueError(
            f"{folder}: expected one vocabulary of {size} tokens in the graphs, found {len(found)}"
        )
    return list(next(iter(found)))


def rebuild(folder: Path, card: dict) -> CaptionerExport:
    """The captioner of `folder` as a `CaptionerExport` of the current code, with its weights."""
    loaded = tf.saved_model.load(str(folder))
    hp, backbone_card = card["hyperparameters"], card["backbone"]
    vocab = Vocabulary(vocabulary_tokens(folder, card["data"]["vocab"]))
    backbone = make_backbone(backbone_card["name"], None, backbone_card["image_size"])
    regions, channels = backbone.output_shape[1:]
    model = Captioner(
        vocab_size=len(vocab),
        num_regions=regions,
        embedding_dim=hp["embedding_dim"],
        units=hp["units"],
        cell=hp["cell"],
        decoder_layers=hp["decoder_layers"],
        attention=hp["attention"],
        dropout=hp["dropout"],
        name="captioner",
    )
    model({"features": np.zeros((1, regions, channels), np.float32), "target_in": np.ones((1, 2), np.int32)})
    copy_variables(loaded.model_variables, backbone.weights + model.weights)
    return CaptionerExport(
        backbone, model, vocab, backbone_card["image_size"], hp["max_length"], hp["length_penalty"]
    )


def _captions(folder: Path, images: list[bytes]) -> list[list[bytes]]:
    signatures = tf.saved_model.load(str(folder)).signatures
    batch = tf.constant(images, tf.string)
    greedy = signatures["caption"](image=batch)["caption"].numpy().tolist()
    beam = signatures["caption_beam"](image=batch, beam_size=tf.constant(BEAM))["caption"].numpy().tolist()
    return [greedy, beam]


def reexport(folder: str | Path, examples: Sequence[Path] = EXAMPLES) -> dict:
    """Re-exports the captioner in `folder` in place; returns its updated model card.

    Args:
        folder: a captioner SavedModel directory with its `model_card.json`.
        examples: images whose greedy and beam captions must not change.

    Raises:
        ValueError: the card is not a captioner's, a variable does not match, or a caption changed;
            the folder is then left as it was.
    """
    folder = Path(folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    if card.get("task") != "caption":
        raise ValueError(f"{folder} holds a {card.get('task')!r} model; only captioners are re-exported")
    images = [Path(p).read_bytes() for p in examples]
    if not images:
        raise ValueError("no example images to compare the old and the new export on")
    export = rebuild(folder, card)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.") as tmp:
        new = Path(tmp) / folder.name
        export.save(new)
        old_captions, new_captions = _captions(folder, images), _captions(new, images)
        if old_captions != new_captions:
            raise ValueError(f"the re-export captions differently: {old_captions} != {new_captions}")
        card.setdefault("export", {})["reexported"] = {
            "date": datetime.date.today().isoformat(),
            "command": f"python -m training.reexport {folder}",
            "why": "the current export code (image checks, decoding); weights copied unchanged, "
            "captions of the example images checked equal",
        }
        (new / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", "utf-8")
        for extra in folder.iterdir():  # the README and anything else that is not part of the SavedModel
            if not (new / extra.name).exists():
                (shutil.copytree if extra.is_dir() else shutil.copy2)(extra, new / extra.name)
        _note_in_readme(new / "README.md", card["export"]["reexported"])
        old = Path(tmp) / "old"
        folder.rename(old)
        new.rename(folder)
    return card


def _note_in_readme(readme: Path, note: dict) -> None:
    if readme.exists():
        lines = [f"- **{key}**: {value}" for key, value in note.items()]
        readme.write_text(
            readme.read_text(encoding="utf-8").rstrip() + "\n\n## Re-export\n\n" + "\n".join(lines) + "\n",
            "utf-8",
        )
