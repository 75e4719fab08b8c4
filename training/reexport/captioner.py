"""A shipped captioner SavedModel re-exported through the current export code, without its training run.

A SavedModel's graphs are fixed when it is written: a shipped captioner keeps the image decoding of
its day until it is exported again. The Keras weights of the shipped models are not in the
repository, so this rebuilds the Keras models from the model card, copies every variable from the
SavedModel (same order, names and shapes, or it stops), checks that the rebuilt model with its
exact weights captions example images as the SavedModel does, exports, measures the new export's
test BLEU for the card, and only then replaces the folder (`safe_export`).

    python -m training.reexport saved_models/caption_flickr8k
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from seq2seq_app.captioning.backbones import make_backbone
from seq2seq_app.captioning.captioner import Captioner
from seq2seq_app.captioning.captioner_api import LoadedCaptioner
from seq2seq_app.captioning.captioner_export import CaptionerExport
from seq2seq_app.core import metrics
from seq2seq_app.core.vocabulary import RESERVED, Vocabulary
from training import caption
from training.cards import card_args, write_model_card
from training.export import safe_export
from training.reexport.weights import copy_variables, reexport_section

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "ui" / "examples").glob("*.jpg"))
BEAM = 3
# Float16 rounding changes a word of a caption now and then (BLEU-4 on the 57 test images moved by
# 0.2); a larger fall is a broken export, which then never replaces the user's model.
MAX_BLEU_DROP = 2.0


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


def rebuild(loaded, folder: Path, card: dict) -> Callable[[bool], CaptionerExport]:
    """The captioner of `folder` (`loaded`) as `CaptionerExport`s of the current code with its
    weights: a function of `float16_storage`."""
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
    settings = (backbone_card["image_size"], hp["max_length"], hp["length_penalty"])
    return lambda float16_storage: CaptionerExport(
        backbone, model, vocab, *settings, float16_storage=float16_storage
    )


def _captions(signatures, images: list[bytes]) -> list[list[bytes]]:
    batch = tf.constant(images, tf.string)
    greedy = signatures["caption"](image=batch)["caption"].numpy().tolist()
    beam = signatures["caption_beam"](image=batch, beam_size=tf.constant(BEAM))["caption"].numpy().tolist()
    return [greedy, beam]


def _greedy_bleu(captioner, test) -> float:
    return metrics.caption_bleu(captioner.caption(test.images, batch_size=32), test.captions)["bleu4"]


def reexport(folder: str | Path, examples: Sequence[Path] = EXAMPLES) -> dict:
    """Re-exports the captioner in `folder` in place; returns its updated model card.

    Args:
        folder: a captioner SavedModel directory with its `model_card.json`.
        examples: images the rebuilt model (exact weights) must caption as the SavedModel does,
            greedy and beam.

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
    loaded = tf.saved_model.load(str(folder))
    expected = _captions(loaded.signatures, images)
    exports = rebuild(loaded, folder, card)
    exact = exports(False)
    rebuilt = _captions({"caption": exact.caption, "caption_beam": exact.caption_beam}, images)
    if rebuilt != expected:
        raise ValueError(f"the rebuilt model captions differently: {rebuilt} != {expected}")
    export = exports(True)
    _, _, test = caption.load_splits(card_args(card, caption.build_parser(), "training.caption"))
    # Measured now rather than read from the card: the card may predate a change to the test split.
    old_bleu = _greedy_bleu(LoadedCaptioner(folder), test)

    def write(path: Path) -> None:
        export.save(path)
        new = _captions(tf.saved_model.load(str(path)).signatures, images)
        same = sum(a == b for old, now in zip(expected, new) for a, b in zip(old, now))
        print(f"the new SavedModel gives {same} of {2 * len(images)} example captions as the old one did")
        card["metrics"].update(caption.evaluate(LoadedCaptioner(path), test))
        if card["metrics"]["greedy"]["bleu4"] < old_bleu - MAX_BLEU_DROP:
            raise ValueError(
                f"the new export's greedy BLEU-4 is {card['metrics']['greedy']['bleu4']}, "
                f"the old one's {old_bleu}"
            )
        checked = {"same_example_captions": f"{same} of {2 * len(images)} (greedy and beam {BEAM})"}
        card["export"] = reexport_section(path, card, checked)
        write_model_card(path, card)

    safe_export(folder, write)
    return card
