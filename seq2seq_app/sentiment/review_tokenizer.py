"""Reviews → token ids for the sentiment models, in core TensorFlow ops (training and export share it).

Text units (`unit`):
    "char": every non-space character (a Hangul syllable, a letter, `ㅋ`, an emoji), plus the
        bigram ending at it, whose left half is a space at a word start.
    "word": `text.tokenize` words and punctuation, plus word bigrams (English reviews, IMDB).

Why characters + bigrams for Korean: NSMC is informal and often unspaced
(`너무재밓었다그래서보는것을추천한다`), so words (eojeol, with particles glued on) are sparse: a
20,000-word vocabulary covers only 77% of running words, while 2,277 syllables cover all but
0.03% of characters and 20,000 bigrams 93% of bigrams, which bring back the word pieces
(`재밌`, `노잼`, ` 최고`). Validation accuracy on NSMC (5% grouped split, unidirectional GRU 256,
best of 3 epochs; `python -m training.compare_units`, see its docstring for the commands):
characters + 30k bigrams 87.45%, characters alone 84.43%, words (30k) 82.74%; a bidirectional
GRU with characters + bigrams reached 87.62% after 2 epochs (vs 87.45%), too little to pay for
re-reading every prefix (see `SentimentClassifier`). Subword (WordPiece/SentencePiece) ops live
in tensorflow-text, which a program with only `tensorflow` cannot load.
"""

from __future__ import annotations

import tensorflow as tf

from seq2seq_app.core import text
from seq2seq_app.core.vocabulary import Vocabulary

UNITS = ("char", "word")
_ROW_START = "^"


def split_units(
    texts: tf.Tensor, unit: str, lowercase: bool = True
) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Splits a batch of reviews into units and the bigram ending at each unit.

    Args:
        texts: string tensor [batch].
        unit: "char" or "word".
        lowercase: lowercase letters first (Hangul is unaffected).

    Returns:
        (units, bigrams): two ragged string tensors of the same shape [batch, (units)].

    Example:
    >>> units, bigrams = split_units(tf.constant(["재밌 어요"]), "char")
    >>> [t.decode() for t in units[0].numpy()], [b.decode() for b in bigrams[0].numpy()]
    (['재', '밌', '어', '요'], ['^재', '재밌', ' 어', '어요'])
    """
    # IMDB (and text pasted from web pages) marks line breaks with HTML tags.
    texts = tf.strings.regex_replace(texts, r"(?i)<br\s*/?>", " ")
    if unit == "char":
        pieces = tf.strings.unicode_split(text.standardize(texts, lowercase=lowercase), "UTF-8")
        separator = ""
    elif unit == "word":
        pieces = text.tokenize(texts, lowercase=lowercase)
        separator = " "
    else:
        raise ValueError(f"Unknown unit {unit!r}; choose one of {UNITS}.")
    flat = pieces.flat_values
    # Each piece's left neighbour within its own review, or a row-start marker.
    position = tf.range(tf.shape(flat, out_type=tf.int64)[0])
    first_in_row = tf.equal(position, tf.gather(pieces.row_starts(), pieces.value_rowids()))
    previous = tf.where(first_in_row, _ROW_START, tf.concat([[_ROW_START], flat[:-1]], axis=0))
    bigrams = pieces.with_flat_values(tf.strings.join([previous, flat], separator=separator))
    keep = tf.not_equal(pieces, " ")  # spaces (char unit only) survive inside the bigrams
    return tf.ragged.boolean_mask(pieces, keep), tf.ragged.boolean_mask(bigrams, keep)


class ReviewTokenizer:
    """Turns raw reviews into the model's inputs: unit ids, bigram ids and the unit strings.

    Args:
        vocab: unit vocabulary.
        bigram_vocab: bigram vocabulary, or None for a model without bigram features.
        unit: "char" or "word".
        max_tokens: longer reviews keep their first `max_tokens` units.

    Example:
    >>> tok = ReviewTokenizer(Vocabulary(["좋", "다"]), None, "char", max_tokens=50)
    >>> tok(tf.constant(["좋다!"]))[0]["tokens"].numpy().tolist()
    [[4, 5, 1]]
    """

    def __init__(self, vocab: Vocabulary, bigram_vocab: Vocabulary | None, unit: str, max_tokens: int):
        if unit not in UNITS:
            raise ValueError(f"Unknown unit {unit!r}; choose one of {UNITS}.")
        self.vocab = vocab
        self.bigram_vocab = bigram_vocab
        self.unit = unit
        self.max_tokens = max_tokens
        # Create the lookup tables now, eagerly: a table first made inside a tf.data or
        # tf.function graph would belong to that graph only.
        for v in (vocab, bigram_vocab):
            if v is not None:
                v.table  # noqa: B018

    def split(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        units, bigrams = split_units(texts, self.unit)
        return units[:, : self.max_tokens], bigrams[:, : self.max_tokens]

    def encode(self, texts: tf.Tensor) -> tuple[dict[str, tf.RaggedTensor], tf.RaggedTensor]:
        """Returns ragged model inputs (`tokens`, and `bigrams` if used: ids [batch, (n)]) and
        the units themselves (strings [batch, (n)])."""
        units, bigrams = self.split(texts)
        inputs = {"tokens": self.vocab.encode(units)}
        if self.bigram_vocab is not None:
            inputs["bigrams"] = self.bigram_vocab.encode(bigrams)
        return inputs, units

    def __call__(self, texts: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """Like `encode`, zero-padded to dense [batch, n] ("" for padding units)."""
        inputs, units = self.encode(texts)
        return {k: v.to_tensor() for k, v in inputs.items()}, units.to_tensor()
