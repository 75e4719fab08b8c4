"""Model FLOPs of one training batch, for the benchmarks' FLOP utilisation.

Convention (as in the usual "model FLOPs utilisation"): every matrix product of the forward pass
counts 2 FLOPs per multiply-add, on real positions only (padding is work the model did not need);
element-wise work (gates, tanh, softmax) is not counted. Backpropagation does two products for
each forward one (gradients of the inputs and of the weights), so a training step is 3x forward.
Embedding lookups are gathers, not products; a tied output embedding is a product and counts.

Counted per model, with W(layer) the entries of its 2-D weights (embeddings excluded):
- encoder–decoder (translator, caption decoder), per batch:
  2 · [W(encoder side) · source positions + W(decoder) · target tokens
       + (attention units + memory width) · Σ source positions × target tokens
       + W(initial-state layers) · sentences]
  where the source positions are words (translator) or image regions (captioner), the decoder's
  W includes the tied output projection (embedding_dim · vocab) and the attention's query
  projection, and the key projection belongs to the encoder side (it runs once per position).
  The pair term is the attention score (a dot product of width `units`) plus the context (a
  weighted sum of the memory).
- sentiment classifier: 2 · [W(encoder) · tokens + W(head) · reviews].
"""

from __future__ import annotations

import keras
import numpy as np

TRAINING_FACTOR = 3  # forward + backward (two products per forward product)


def matrix_weights(layer: keras.layers.Layer) -> int:
    """Entries of the 2-D weights (matrices of products) of `layer` and its sublayers, embeddings
    and biases left out.

    Example:
    >>> matrix_weights(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
    12
    """
    embeddings = {
        id(w)
        for sub in layer._flatten_layers(include_self=True, recursive=True)
        if isinstance(sub, keras.layers.Embedding)
        for w in sub.weights
    }
    # A GRU's bias is 2-D too (input and recurrent biases, `reset_after`): an addition, not a product.
    return sum(
        int(np.prod(w.shape))
        for w in layer.weights
        if len(w.shape) == 2 and w.name != "bias" and id(w) not in embeddings
    )


def _attention_terms(decoder) -> tuple[int, int, int]:
    """(decoder weights per target token, key weights per memory position, width per pair)."""
    attention = decoder.attention
    keys = matrix_weights(attention.key_proj)
    per_token = matrix_weights(decoder) - keys + decoder.vocab_size * decoder.embedding_dim
    return per_token, keys, attention.units


def encoder_decoder_flops(
    model, source_positions: int, target_tokens: int, pairs: int, sentences: int
) -> float:
    """Training FLOPs of one batch of a `Translator` or `Captioner`.

    Args:
        model: the Keras model (its `decoder` is an `AttentionDecoder`).
        source_positions: real (non-padding) source tokens, or image regions × captions.
        target_tokens: real target tokens.
        pairs: Σ over examples of source positions × target tokens (attention pairs).
        sentences: examples in the batch.
    """
    per_target, keys, attention_units = _attention_terms(model.decoder)
    if hasattr(model, "encoder"):  # translator
        per_source = matrix_weights(model.encoder) + keys
        memory_width = model.units * 2  # bidirectional encoder
        per_sentence = sum(matrix_weights(b) for layer in model.bridges for b in layer)
    else:  # captioner: the region projection runs once per region of every caption
        per_source = matrix_weights(model.projection) + keys
        memory_width = model.units
        per_sentence = sum(matrix_weights(d) for d in model.init_states)
    forward = 2 * (
        per_source * source_positions
        + per_target * target_tokens
        + (attention_units + memory_width) * pairs
        + per_sentence * sentences
    )
    return float(TRAINING_FACTOR * forward)


def translation_batch_flops(model, inputs: dict, targets) -> float:
    """Training FLOPs of one translation batch `({"source", "target_in"}, target_out)`."""
    source = np.sum(np.asarray(inputs["source"]) != 0, axis=1)
    target = np.sum(np.asarray(targets) != 0, axis=1)
    return encoder_decoder_flops(
        model, int(source.sum()), int(target.sum()), int((source * target).sum()), len(source)
    )


def caption_batch_flops(model, inputs: dict, targets) -> float:
    """Training FLOPs of one caption batch `({"features", "target_in"}, target_out)`."""
    target = np.sum(np.asarray(targets) != 0, axis=1)
    regions = model.num_regions
    return encoder_decoder_flops(
        model, regions * len(target), int(target.sum()), regions * int(target.sum()), len(target)
    )


def sentiment_batch_flops(model, inputs: dict, labels) -> float:
    """Training FLOPs of one sentiment batch `({"tokens"[, "bigrams"]}, label)`."""
    tokens = int(np.sum(np.asarray(inputs["tokens"]) != 0))
    forward = 2 * (matrix_weights(model.encoder) * tokens + matrix_weights(model.head) * len(labels))
    return float(TRAINING_FACTOR * forward)
