"""Inside the shipped GRU models: gates and states per token, recomputed from their own weights.

The SavedModels expose scores and translations, not gates. Here their variables are read
(`tf.saved_model.load(...).model_variables`, in the Keras model's weight order; the model card
has the configuration), the input is tokenised with the project's own splitting and looked up in
the SavedModel's own tables, and the GRU is stepped in numpy. `sentiment_inside` checks itself:
its recomputed score must equal the SavedModel's `classify` score.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.core import text as text_ops
from seq2seq_app.core.subword_vocabulary import SubwordVocabulary
from seq2seq_app.core.vocabulary import END_ID, UNK_ID
from seq2seq_app.sentiment.review_tokenizer import split_units
from seq2seq_app.translation.translator_api import export_limits

TOP_UNITS = 16  # units shown per heatmap: the ones that move most over the text
MATCH_TOLERANCE = 1e-4


def gru_steps(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> dict:
    """Keras' GRU (`reset_after=True`, gate order z, r, h) stepped over x [T, features].

    h_t = z ⊙ h_{t-1} + (1 − z) ⊙ tanh(W_h x + b_h + r ⊙ (U_h h_{t-1} + c_h)), with z the
    update gate (how much of the old state is kept) and r the reset gate.

    Returns:
        {"update": z, "reset": r, "hidden": h}, each float64 [T, units].

    Example:
    >>> out = gru_steps(np.ones((3, 2)), np.zeros((2, 3)), np.zeros((1, 3)), np.zeros((2, 3)))
    >>> out["update"][0].tolist(), out["hidden"].shape
    ([0.5], (3, 1))
    """
    units = recurrent.shape[0]
    bias = np.reshape(bias, (2, 3 * units))
    inputs = x @ kernel + bias[0]
    h = np.zeros(units)
    gates = {"update": [], "reset": [], "hidden": []}
    for t in range(len(x)):
        inner = h @ recurrent + bias[1]
        z = _sigmoid(inputs[t, :units] + inner[:units])
        r = _sigmoid(inputs[t, units : 2 * units] + inner[units : 2 * units])
        h = z * h + (1 - z) * np.tanh(inputs[t, 2 * units :] + r * inner[2 * units :])
        for key, value in (("update", z), ("reset", r), ("hidden", h)):
            gates[key].append(value)
    return {key: np.array(values).reshape(len(x), units) for key, values in gates.items()}


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _load(path: str | Path, task: str):
    card_path = Path(path) / "model_card.json"
    if not card_path.is_file():
        raise ValueError(f"No model card in {path}: not a model folder written by training.{task}.")
    card = json.loads(card_path.read_text())
    if card.get("task") != task:
        raise ValueError(f"{path} holds a {card.get('task')} model, not a {task} one.")
    return (*_load_module(str(path)), card)


# Unbounded: the lab only opens the app's model folders, and a SavedModel evicted and loaded again
# would keep its first load's float32 weight copy until the process exits (see Float32Copy).
@cache
def _load_module(path: str):
    module = tf.saved_model.load(path)
    return module, [np.asarray(v, np.float64) for v in module.model_variables]


@cache
def _subwords(path: str) -> SubwordVocabulary | None:
    """The source pieces of a subword translator (None for a word-level one)."""
    module = _load_module(path)[0]
    unit = getattr(module, "text_unit", None)  # exports older than subwords have none: words
    if unit is None or unit.numpy() != b"subword":
        return None
    return SubwordVocabulary(t.decode() for t in module.source_vocabulary.numpy())


def _lookup(table, keys: tf.Tensor) -> np.ndarray:
    # A restored StaticHashTable keeps its resource but not its Python `lookup` method.
    ids = tf.raw_ops.LookupTableFindV2(
        table_handle=table.resource_handle, keys=keys, default_value=tf.constant(UNK_ID, tf.int64)
    )
    return ids.numpy()


def _top_units(values: np.ndarray, k: int = TOP_UNITS) -> list[int]:
    """The k units whose values change most from token to token (spread over the text)."""
    spread = values.max(axis=0) - values.min(axis=0) if len(values) else np.zeros(values.shape[1])
    return sorted(np.argsort(-spread, kind="stable")[:k].tolist())


def _rows(values: np.ndarray, units: list[int]) -> list[list[float]]:
    return np.round(values[:, units].T, 4).tolist()


def sentiment_inside(model_dir: str | Path, review: str) -> dict:
    """The update gate, reset gate and hidden state of a shipped GRU sentiment model, per token.

    Args:
        model_dir: a SavedModel folder written by `training.sentiment` (1 unidirectional GRU layer).
        review: the text to read.

    Returns:
        {"tokens": [...], "units": [the shown unit indices], "update"/"reset"/"hidden":
         [unit rows][token columns], "token_scores": [score after each token], "score": the
         recomputed score, "model_score": `classify`'s, "match": |difference| ≤ 1e-4}.

    Raises:
        ValueError: a model this recomputation does not cover, or a review with no tokens.
    """
    module, weights, card = _load(model_dir, "sentiment")
    hp = card["hyperparameters"]
    if hp["cell"] != "gru" or hp["layers"] != 1 or hp["bidirectional"]:
        raise ValueError("inside reads one unidirectional GRU layer; this model is " + card["title"])
    units, bigrams = (r[0, : hp["max_tokens"]] for r in split_units(tf.constant([review]), hp["unit"]))
    if units.shape[0] == 0:
        raise ValueError("The review has nothing to read.")
    embedding, kernel, recurrent, bias, *rest = weights
    x = embedding[_lookup(module.tables[0], units)]
    if hp["bigram_vocab_size"]:
        bigram_embedding, *rest = rest
        x = x + bigram_embedding[_lookup(module.tables[1], bigrams)]
    head_kernel, head_bias = rest
    gates = gru_steps(x, kernel, recurrent, bias)
    h = gates["hidden"]
    means = np.cumsum(h, axis=0) / np.arange(1, len(h) + 1)[:, None]
    scores = _sigmoid(np.concatenate([h, means], axis=1) @ head_kernel[:, 0] + head_bias[0])
    model_score = float(module.signatures["classify"](text=tf.constant([review]))["score"].numpy()[0])
    shown = _top_units(h)
    return {
        "tokens": [t.decode() for t in units.numpy()],
        "units": shown,
        **{key: _rows(values, shown) for key, values in gates.items()},
        "token_scores": np.round(scores, 4).tolist(),
        "score": float(scores[-1]),
        "model_score": model_score,
        "match": bool(abs(scores[-1] - model_score) <= MATCH_TOLERANCE),
    }


def translator_inside(model_dir: str | Path, sentence: str) -> dict:
    """The forward and backward encoder states of a shipped translator, per source token.

    The forward state at token t has read tokens 0…t, the backward one tokens t…end; their
    concatenation is what attention sees at t. The tokens are what the encoder reads: words for a
    word-level model, pieces for a subword one (`##` marks a piece inside a word). Like the
    export, it encodes one sentence at a time: the first sentence, up to the export's piece length
    (50 words in the shipped model).

    Args:
        model_dir: a SavedModel folder written by `training.translate` (1 bidirectional GRU layer).
        sentence: source text.

    Returns:
        {"tokens": [... , "⟨end⟩"], "units": [...], "forward": rows, "backward": rows,
         "forward_norm"/"backward_norm": ‖state‖ per token}.
    """
    module, weights, card = _load(model_dir, "translate")
    hp = card["hyperparameters"]
    if hp["cell"] != "gru" or hp["encoder_layers"] != 1:
        raise ValueError("inside reads one bidirectional GRU encoder layer; this model is " + card["title"])
    first = text_ops.split_sentences(tf.constant([sentence]))[:, :1].flat_values
    cased = text_ops.tokenize(first, lowercase=False)[:, : export_limits(module)["max_source_tokens"]]
    if cased.flat_values.shape[0] == 0:
        raise ValueError("The sentence has nothing to read.")
    lowered = text_ops.lowercase_tokens(cased)
    subwords = _subwords(str(model_dir))
    if subwords is None:
        ids, tokens = _lookup(module.source_table, lowered[0]), [t.decode() for t in cased[0].numpy()]
    else:
        piece_ids, pieces, _ = subwords.segment(lowered)
        ids, tokens = piece_ids[0].numpy(), [p.decode() for p in pieces[0].numpy()]
    embedding, fk, fr, fb, bk, br, bb = weights[:7]
    x = embedding[np.append(ids, END_ID)]
    forward = gru_steps(x, fk, fr, fb)["hidden"]
    backward = gru_steps(x[::-1], bk, br, bb)["hidden"][::-1]
    shown = _top_units(np.concatenate([forward, backward], axis=0))
    return {
        "tokens": tokens + ["⟨end⟩"],
        "units": shown,
        "forward": _rows(forward, shown),
        "backward": _rows(backward, shown),
        "forward_norm": np.round(np.linalg.norm(forward, axis=1), 4).tolist(),
        "backward_norm": np.round(np.linalg.norm(backward, axis=1), 4).tolist(),
    }
