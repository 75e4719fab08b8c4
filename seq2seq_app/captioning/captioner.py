"""Show, Attend and Tell style captioner: CNN regions in, next-word logits out."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_app.core.encoder_decoder import DecoderState, EncoderDecoder
from seq2seq_app.core.layers.attention_decoder import AttentionDecoder
from seq2seq_app.core.layers.rnn import num_states


@keras.saving.register_keras_serializable(package="seq2seq_app")
class Captioner(EncoderDecoder):
    """One-to-many model: an image's CNN feature map (its regions) in, a caption out.

    The regions are projected to the decoder's size, given a learned embedding of their place in
    the grid (so that what the decoder attends to says where it is, not only what it looks
    like: "left of", "in front of"), and attended over at every step (Xu et al., 2015); the
    decoder's initial states are computed from the mean region, so the image reaches the
    decoder both through its state and through attention. The CNN itself is not part of
    this model: with a frozen backbone its features are computed once and cached, which is what
    makes training fast on a CPU (see `seq2seq_app.captioning.backbones`).

    Args:
        vocab_size: number of caption token ids.
        num_regions: regions per image (MobileNetV2 at 224 px: 49).
        embedding_dim: word embedding size.
        units: decoder state size and projected region size.
        cell: "lstm", "gru" or "simple_rnn".
        decoder_layers: stacked decoder layers.
        attention: "additive" or "multiplicative".
        dropout: dropout rate on regions, embeddings and between layers.
        **kwargs: forwarded to `keras.Model`.

    Example:
    >>> model = Captioner(vocab_size=50, num_regions=49, embedding_dim=8, units=16)
    >>> logits = model({"features": ops.ones((2, 49, 32)), "target_in": ops.ones((2, 4), "int32")})
    >>> tuple(logits.shape)
    (2, 4, 50)
    """

    source_key = "features"

    def __init__(
        self,
        vocab_size: int,
        num_regions: int = 49,
        embedding_dim: int = 256,
        units: int = 512,
        cell: str = "lstm",
        decoder_layers: int = 1,
        attention: str = "additive",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.num_regions = num_regions
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.decoder_layers = decoder_layers
        self.attention = attention
        self.dropout = dropout
        self.region_dropout = keras.layers.Dropout(dropout, name="region_dropout")
        self.projection = keras.layers.Dense(units, activation="relu", name="region_projection")
        self.region_position = keras.layers.Embedding(num_regions, units, name="region_position")
        self.init_states = [
            keras.layers.Dense(units, activation="tanh", name=f"init_state_{i}_{j}")
            for i in range(decoder_layers)
            for j in range(num_states(cell))
        ]
        self.decoder = AttentionDecoder(
            vocab_size, embedding_dim, units, cell, decoder_layers, attention, dropout, name="decoder"
        )

    def encode(self, features, training=None):
        """Regions [batch, regions, channels] → the decoding state a `DecoderState`."""
        memory = self.projection(self.region_dropout(features, training=training))
        memory = memory + ops.expand_dims(self.region_position(ops.arange(self.num_regions)), 0)
        mask = ops.ones(ops.shape(memory)[:2], dtype="bool")
        mean = ops.mean(memory, axis=1)
        n = num_states(self.cell)
        flat = [dense(mean) for dense in self.init_states]
        states = [flat[i * n : (i + 1) * n] for i in range(self.decoder_layers)]
        keys = self.decoder.attention.project_keys(memory)
        return DecoderState(memory, mask, keys, states)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            num_regions=self.num_regions,
            embedding_dim=self.embedding_dim,
            units=self.units,
            cell=self.cell,
            decoder_layers=self.decoder_layers,
            attention=self.attention,
            dropout=self.dropout,
        )
        return config
