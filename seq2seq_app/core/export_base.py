"""What the three exports share: variable tracking, the empty-batch stand-in, beams, `save`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from seq2seq_app.core import decoding, recurrence
from seq2seq_app.core.float32_copy import Float32Copy, stored_variable
from seq2seq_app.core.product_choice import ProductChoice

MAX_BEAM = 16  # beams a caller may ask for; more cost memory and time for no better output
# Hotter samples are noise; at an infinite temperature every column of an output table, padding
# included, would be as likely as any token.
MAX_TEMPERATURE = 10.0


class ExportBase(tf.Module):
    """Base of the task exports (`TranslatorExport`, `CaptionerExport`, `SentimentExport`).

    A subclass lists its `tf.function` signatures in `SIGNATURES` (the first one also serves as
    `serving_default`), passes its Keras models to `__init__` and keeps them only through bound
    methods (`model.encode`, `model.decode_step`, …). The signatures are traced with
    `autograph=False`: the graph code calls `tf.cond` and `tf.while_loop` itself, and converting
    every function it calls was about half the time to save a translator.

    Args:
        *models: the Keras models whose weights the SavedModel stores.
        float16_storage: store matrices in float16 (half the size; see `stored_variable`) rather
            than float32 (the Keras model's exact weights).
        output_layer: a decoder's tied embeddings and output bias (weights of the models), which
            its decoding steps read as one output table and their input embeddings as the stored
            rows (`decoder_tables`), never as the Keras variable: `with_weights` does not map
            the embeddings.
        banned_ids: tokens the output table scores NEG_INF, so no search chooses them (padding,
            start).

    Example:
    >>> class Doubler(ExportBase):
    ...     SIGNATURES = ("double",)
    ...
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")], autograph=False)
    ...     def double(self, x):
    ...         return {"y": 2 * x}
    >>> Doubler().double(tf.constant([1.0, 2.0]))["y"].numpy().tolist()
    [2.0, 4.0]

    A signature calls the models through `with_weights`, which reads their weights once per
    call from the float32 copy of what the SavedModel stores (`Float32Copy`).
    """

    SIGNATURES: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *models: keras.Model,
        float16_storage: bool = True,
        output_layer: tuple[keras.Variable, keras.Variable] | None = None,
        banned_ids: Sequence[int] = (),
    ):
        super().__init__()
        # The SavedModel stores its own variables (matrices in float16) and the Keras models are
        # held only through their bound methods and a closure: tracking them would store every
        # weight again, and TF's tracking does not follow every Keras container (nested lists of
        # layers).
        weights = [v for model in models for v in model.weights]
        self.model_variables = [stored_variable(v.value, float16_storage) for v in weights]
        table = None
        self._table_embeddings = None
        if output_layer is not None:
            indices = [i for v in output_layer for i, w in enumerate(weights) if w is v]
            if len(indices) != 2:
                raise ValueError("the output layer must be weights of the exported models")
            vocab = output_layer[1].shape[0]
            # Padding columns to whole blocks of `decoding.top_k` spares it a copy on every step.
            offsets = np.zeros([vocab + -vocab % decoding.TOP_K_BLOCK], np.float32)
            # Below a banned token's score too, so a search that has to go below NEG_INF (a beam
            # wider than the tokens left) takes a token of the vocabulary, never a padding column.
            offsets[vocab:] = 2 * decoding.NEG_INF
            offsets[list(banned_ids)] = decoding.NEG_INF
            table = (*indices, offsets)
            self._table_embeddings = indices[0]
        self.float32_copy = Float32Copy(self.model_variables, table)
        recurrent = [w for w in weights if w.path.endswith("recurrent_kernel")]
        shapes = sorted({tuple(w.shape) for w in recurrent if recurrence.splits(w.shape)})
        # Which form of a few-row recurrent product runs faster is measured where the model loads.
        # By name: a GRU's or LSTM's (a custom cell's of the same name, which `recurrence` does not
        # run, is timed for nothing).
        self.product_choice = ProductChoice(shapes) if shapes else None
        self._keras_weights = lambda: weights

    def refresh_weights(self) -> None:
        """Takes the Keras models' current weights into the export: for an export used in memory
        while its model trains on (validation BLEU after each epoch). A SavedModel already written
        keeps the weights it was saved with. Float32 storage only (`float16_storage=False`): the
        float16 rounding check belongs to the export's creation."""
        if any(v.dtype == tf.float16 for v in self.model_variables):
            raise ValueError("refresh_weights needs an export with float16_storage=False")
        for stored, weight in zip(self.model_variables, self._keras_weights()):
            stored.assign(tf.cast(weight.value, stored.dtype))
        self.float32_copy.refill()

    def with_weights(self, *model_functions: Callable) -> tuple[Callable, ...]:
        """`model_functions` (bound methods of the models) reading the exported weights, which are
        read here, once: call this outside a search loop, so the loop's steps reuse them. Their
        few-row recurrent products take the form this machine ran faster (`ProductChoice`).

        The Keras variables are mapped to the copy's tensors with `keras.StatelessScope`, so the
        models' own code runs unchanged and no graph reads a Keras variable."""
        # The output layer's embeddings reach the functions only through `decoder_tables`.
        mapped = [i for i in range(len(self.model_variables)) if i != self._table_embeddings]
        weights = self._keras_weights()
        mapping = list(zip([weights[i] for i in mapped], self.float32_copy.values(mapped)))
        choice = {} if self.product_choice is None else self.product_choice.choice()

        def reading(function: Callable) -> Callable:
            def call(*args, **kwargs):
                with keras.StatelessScope(state_mapping=mapping), recurrence.few_row_split(choice):
                    return function(*args, **kwargs)

            return call

        return tuple(reading(function) for function in model_functions)

    def decoder_tables(self) -> dict[str, tf.Tensor]:
        """The `output_layer` for `decode_step`, read here once: the [dim + 1, columns] table of
        `Float32Copy.output_table` as its `output_table`, and the tied embeddings as the
        SavedModel stores them (float16, or float32 with `float16_storage=False` or when float16
        cannot hold them) as its `embedding_rows`, whose rows it gathers (a row of the table's
        transposed embeddings is spread across all of it). Cast to float32, a stored row equals
        the table's column exactly."""
        rows = tf.convert_to_tensor(self.model_variables[self._table_embeddings])
        return {"output_table": self.float32_copy.output_table(), "embedding_rows": rows}

    @staticmethod
    def non_empty(batch: tf.Tensor, stand_in: tf.Tensor) -> tf.Tensor:
        """`batch`, or for an empty batch the one-row `stand_in`: recurrent layers cannot run on zero
        rows. `sliced` drops the stand-in's results again."""
        return tf.cond(tf.size(batch) > 0, lambda: batch, lambda: stand_in)

    @staticmethod
    def sliced(outputs: dict[str, tf.Tensor], batch: tf.Tensor) -> dict[str, tf.Tensor]:
        """Every output cut to the caller's batch size (dropping an empty batch's stand-in row)."""
        n = tf.shape(batch)[0]
        return {name: value[:n] for name, value in outputs.items()}

    @staticmethod
    def beam_size(requested: tf.Tensor) -> tf.Tensor:
        """The requested beam size within 1 … `MAX_BEAM`."""
        return tf.clip_by_value(requested, 1, MAX_BEAM)

    @staticmethod
    def temperature(requested: tf.Tensor) -> tf.Tensor:
        """The requested sampling temperature, at most `MAX_TEMPERATURE` (≤ 0: greedy)."""
        return tf.minimum(requested, MAX_TEMPERATURE)

    @staticmethod
    def flat_beams(x: tf.Tensor) -> tf.Tensor:
        """[batch, beam, …] → [batch · beam, …], every candidate a row of its own."""
        return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))

    @classmethod
    def candidate_texts(cls, to_text: Callable[[tf.Tensor], tf.Tensor], ids: tf.Tensor) -> tf.Tensor:
        """Beam search ids [batch, beam, time] → string [batch, beam], with `to_text` mapping ids
        [rows, time] to strings [rows] (rows in `flat_beams` order)."""
        return tf.reshape(to_text(cls.flat_beams(ids)), tf.shape(ids)[:2])

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # The helpers the signatures call (`_encode_text`, `_outputs`, …) are in the SavedModel's
        # function library through those calls. As attributes of their own, the SavedModel would
        # also store the copy of a helper without an input signature that saving traces with
        # named specs (a second graph of it), and loading would restore each of them.
        children = super()._trackable_children(save_type, **kwargs)
        return {
            name: child
            for name, child in children.items()
            if not (
                name.startswith("_")
                and not name.startswith("__")
                and isinstance(child, tf.types.experimental.PolymorphicFunction)
            )
        }

    def save(self, path: str | Path) -> None:
        """Writes the SavedModel with the signatures in `SIGNATURES`."""
        signatures = {name: getattr(self, name) for name in self.SIGNATURES}
        tf.saved_model.save(
            self, str(path), signatures={**signatures, "serving_default": signatures[self.SIGNATURES[0]]}
        )
