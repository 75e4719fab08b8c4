"""Bidirectional recurrent encoder + attention decoder for translation."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_app.core.encoder_decoder import DecoderState, EncoderDecoder
from seq2seq_app.core.layers.attention_decoder import AttentionDecoder
from seq2seq_app.core.layers.recurrent_encoder import RecurrentEncoder
from seq2seq_app.core.layers.rnn import num_states


@keras.saving.register_keras_serializable(package="seq2seq_app")
class Translator(EncoderDecoder):
    """Many-to-many sequence model: source ids in, next-target-token logits out.

    The encoder's final state (both directions) is bridged through a `tanh` Dense layer into
    every decoder layer's initial state. The model holds no decoding loop: `encode` and
    `decode_step` are what the search functions in `seq2seq_app.core.decoding` drive.

    Args:
        source_vocab_size: number of source token ids.
        target_vocab_size: number of target token ids.
        embedding_dim: embedding size (source and target).
        units: recurrent state size (per direction in the encoder).
        cell: "lstm", "gru" or "simple_rnn", for encoder and decoder.
        encoder_layers: stacked encoder layers.
        decoder_layers: stacked decoder layers.
        attention: "additive" or "multiplicative".
        dropout: dropout rate.
        **kwargs: forwarded to `keras.Model`.

    Example:
    >>> model = Translator(source_vocab_size=60, target_vocab_size=50, embedding_dim=8, units=16)
    >>> logits = model({"source": ops.ones((2, 7), "int32"), "target_in": ops.ones((2, 4), "int32")})
    >>> tuple(logits.shape)
    (2, 4, 50)
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        embedding_dim: int = 256,
        units: int = 256,
        cell: str = "gru",
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        attention: str = "additive",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.attention = attention
        self.dropout = dropout
        self.encoder = RecurrentEncoder(
            source_vocab_size,
            embedding_dim,
            units,
            cell,
            encoder_layers,
            True,
            dropout,
            name="encoder",
        )
        self.bridges = [
            [
                keras.layers.Dense(units, activation="tanh", name=f"bridge_{i}_{j}")
                for j in range(num_states(cell))
            ]
            for i in range(decoder_layers)
        ]
        self.decoder = AttentionDecoder(
            target_vocab_size,
            embedding_dim,
            units,
            cell,
            decoder_layers,
            attention,
            dropout,
            name="decoder",
        )

    def encode(self, source_ids, training=None):
        """Returns the decoding state: a `DecoderState`."""
        memory, final = self.encoder(source_ids, training=training)
        mask = ops.not_equal(source_ids, 0)
        states = [[bridge(s) for bridge, s in zip(layer, final)] for layer in self.bridges]
        keys = self.decoder.attention.project_keys(memory)
        return DecoderState(memory, mask, keys, states)

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocab_size=self.source_vocab_size,
            target_vocab_size=self.target_vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            cell=self.cell,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            attention=self.attention,
            dropout=self.dropout,
        )
        return config
