"""Text processing that runs inside exported graphs, built from core TensorFlow ops only.

The exported SavedModels must load with nothing but `tensorflow` installed, so this module avoids
tensorflow-text: standardisation, tokenisation and detokenisation are `tf.strings` regular
expressions (RE2, Unicode-aware) and vocabularies are `tf.lookup` tables.

Text unit: words, with punctuation as separate tokens and numbers kept whole. Why: on the
Tatoeba Spanish→English training file, words seen at least twice cover 98.7% of Spanish and
99.4% of English running tokens, so a word vocabulary of ~15k/9k loses little; words keep the
decoder to ~8 steps a sentence where characters need ~35, which is what lets greedy decoding
answer in a few milliseconds on a CPU; and the rare unknown word (a name, a number) is copied
from the source through the attention weights instead of being printed as `[UNK]`. Subword
translators split these words further into byte-pair pieces, also with core ops only
(`seq2seq_app.core.subword_vocabulary`), where tensorflow-text's WordPiece or SentencePiece ops
would not load in a program with only `tensorflow`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import tensorflow as tf

# A token is a number (with inner separators: 3.14, 10,000, 12:30), a word (letters, marks and
# digits with inner apostrophes or hyphens: don't, l'homme, well-known), or any other single
# non-space character (punctuation, symbols, emoji).
_TOKEN = r"(\p{N}+(?:[.,:]\p{N}+)*|[\p{L}\p{M}\p{N}]+(?:['\-][\p{L}\p{M}\p{N}]+)*|[^\s])"

_COMBINING = "\u0300\u0301\u0302\u0303\u0308\u0327\u030c"


def _compositions() -> list[tuple[str, str]]:
    """Pairs (letter + combining mark, precomposed letter) for Latin letters.

    Text typed on some systems arrives decomposed (NFD: `e` + U+0301); the training data is
    composed (NFC: `é`). Core TF has no Unicode normaliser, so the common Latin compositions
    are rewritten with regular expressions.
    """
    pairs = []
    for base in "aeiouycnszAEIOUYCNSZ":
        for mark in _COMBINING:
            composed = unicodedata.normalize("NFC", base + mark)
            if len(composed) == 1:
                pairs.append((base + mark, composed))
    return pairs


_COMPOSITIONS = _compositions()
_PUNCT_TRANSLATION = [
    ("[\u2018\u2019\u02bc\u00b4`]", "'"),  # typographic apostrophes
    ("[\u201c\u201d\u00ab\u00bb\u201e]", '"'),  # typographic double quotes
    ("\u2026", "..."),
    ("[\u2013\u2014]", " - "),
    (r"[\p{Zs}\s]+", " "),  # any Unicode space, tab or newline
]


def _compose_marks(text: tf.Tensor) -> tf.Tensor:
    for decomposed, composed in _COMPOSITIONS:
        text = tf.strings.regex_replace(text, decomposed, composed)
    return text


def standardize(text: tf.Tensor, lowercase: bool = True) -> tf.Tensor:
    """Cleans a batch of strings: valid UTF-8, composed accents, plain quotes, single spaces.

    Args:
        text: string tensor of any shape.
        lowercase: lowercase every letter (Unicode-aware); keeps accents and Hangul.

    Example:
    >>> standardize(tf.constant(["  ¿Dónde\u00a0ESTÁ?"])).numpy()[0].decode()
    '¿dónde está?'
    """
    text = tf.convert_to_tensor(text, tf.string)
    # Invalid bytes become U+FFFD instead of failing every later op.
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    has_marks = tf.reduce_any(tf.strings.regex_full_match(text, r"(?s).*\p{M}.*"))
    text = tf.cond(has_marks, lambda: _compose_marks(text), lambda: text)
    for pattern, replacement in _PUNCT_TRANSLATION:
        text = tf.strings.regex_replace(text, pattern, replacement)
    text = tf.strings.strip(text)
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    return text


def tokenize(text: tf.Tensor, lowercase: bool = True) -> tf.RaggedTensor:
    """Standardises and splits a batch of strings into word and punctuation tokens.

    Args:
        text: string tensor of shape [batch].
        lowercase: passed to `standardize`.

    Returns:
        A `tf.RaggedTensor` of tokens, shape [batch, (tokens)].

    Example:
    >>> tokenize(tf.constant(["¿Qué hora es?"])).to_list()
    [[b'\xc2\xbf', b'qu\xc3\xa9', b'hora', b'es', b'?']]
    """
    tokens = tf.strings.split(tf.strings.regex_replace(standardize(text, lowercase=False), _TOKEN, r" \1 "))
    if lowercase:  # after splitting, so cased and lowercased tokens always align one to one
        tokens = lowercase_tokens(tokens)
    return tokens


def lowercase_tokens(tokens: tf.RaggedTensor) -> tf.RaggedTensor:
    """Unicode-aware lowercasing of every token of a ragged batch."""
    return tokens.with_flat_values(tf.strings.lower(tokens.flat_values, encoding="utf-8"))


# Detokenisation rules for Latin-script output: no space before closing punctuation, none after
# opening punctuation, quotes hug what they quote, a comma once.
_DETOKENIZE_RULES = [
    (r" ([.,!?;:%)\]}])", r"\1"),
    (r"([(\[{¿¡$]) ", r"\1"),
    (r'" ([^"]*?) "', r'"\1"'),
    # A model can write a comma twice (after a word passed through, say); no text wants two.
    # After the first rule, which takes the space out of " , ,"; last, as `join_sentences`
    # applies the first two rules only.
    (r",,+", ","),
]


def join_rows(values: tf.RaggedTensor, separator: str = "") -> tf.Tensor:
    """`tf.strings.reduce_join(values, axis=1, separator=separator)` for a ragged [rows, (n), …]
    string tensor (ragged rank 1), as one core op: the ragged reduction builds some eighty, and
    the exports join strings on every call.

    Example:
    >>> join_rows(tf.ragged.constant([["a", "b"], [], ["c"]]), " ").numpy()
    array([b'a b', b'', b'c'], dtype=object)
    """
    return tf.strings.unsorted_segment_join(
        values.values, values.value_rowids(), values.nrows(), separator=separator
    )


def detokenize(tokens: tf.RaggedTensor) -> tf.Tensor:
    """Joins tokens into text as a person writes it, with a capital first letter.

    Args:
        tokens: `tf.RaggedTensor` of strings, shape [batch, (tokens)].

    Returns:
        A string tensor of shape [batch].

    Example:
    >>> detokenize(tf.ragged.constant([["where", "is", "Tom's", "car", "?"]])).numpy()
    array([b"Where is Tom's car?"], dtype=object)
    """
    text = join_rows(tokens, " ")
    for pattern, replacement in _DETOKENIZE_RULES:
        text = tf.strings.regex_replace(text, pattern, replacement)
    return capitalize_first(text)


def join_sentences(sentences: tf.RaggedTensor) -> tf.Tensor:
    """Joins each row's detokenised sentences (or pieces of one) with spaces, with no space
    before closing or after opening punctuation where two pieces of one sentence meet.

    Example:
    >>> join_sentences(tf.ragged.constant([["Hello.", "", "How are", "you", "?"], []])).numpy()
    array([b'Hello. How are you?', b''], dtype=object)
    """
    text = join_rows(sentences, " ")
    text = tf.strings.regex_replace(text, "  +", " ")  # an empty sentence adds no space
    for pattern, replacement in _DETOKENIZE_RULES[:2]:  # quotes cannot be paired across sentences
        text = tf.strings.regex_replace(text, pattern, replacement)
    return tf.strings.strip(text)


def capitalize_first(text: tf.Tensor) -> tf.Tensor:
    """Uppercases the first letter of each string (after any opening "¿", "¡" or quote)."""
    prefix = tf.strings.regex_replace(text, r"(?s)^([^\p{L}\p{N}]*).*$", r"\1")
    start = tf.strings.length(prefix, unit="UTF8_CHAR")
    length = tf.strings.length(text, unit="UTF8_CHAR")
    first = tf.strings.substr(text, start, tf.minimum(length - start, 1), unit="UTF8_CHAR")
    rest = tf.strings.substr(text, tf.minimum(start + 1, length), length, unit="UTF8_CHAR")
    return prefix + tf.strings.upper(first, encoding="utf-8") + rest


# Sentence ends: . ! ? or … (with any closing quotes or brackets), then space, then what opens a
# sentence (¿ ¡ quotes, brackets, a capital letter or a digit). Abbreviations and initials keep
# their full stop: it is swapped for a placeholder while splitting.
_SENTENCE_END = r"([.!?…]+[\"'»”)\]]*)\s+([¿¡\"'«“(\[]*[\p{Lu}\p{N}])"
_ABBREVIATION = (
    r"\b(Sr|Sra|Srta|Dr|Dra|Ud|Uds|Vd|Vds|Lic|Ing|Prof|Mr|Mrs|Ms|St|Jr|vs|etc|núm|pág|art|Av|"
    r"EE\.UU|[\p{Lu}])\."
)
_SPLIT, _KEPT_STOP = "\x1f", "\x1e"


def without_markers(text: tf.Tensor) -> tf.Tensor:
    """The text with the control characters `split_sentences` uses as its own markers made spaces
    (it does so itself; a caller that also tokenises the text whole needs the same text).

    Example:
    >>> without_markers(tf.constant(["a\x1eb\x1fc"])).numpy().tolist()
    [b'a b c']
    """
    return tf.strings.regex_replace(tf.convert_to_tensor(text, tf.string), f"[{_SPLIT}{_KEPT_STOP}]", " ")


def split_sentences(text: tf.Tensor) -> tf.RaggedTensor:
    """Splits each string of a batch into its sentences, in the graph.

    A quotation is never split: a sentence end inside open quotes (an odd number of `"` so far, or
    more “ « than ” » so far) joins the next sentence to it.

    Args:
        text: string tensor of shape [batch].

    Returns:
        A `tf.RaggedTensor` [batch, (sentences)]; an empty or blank string has no sentence.

    Example:
    >>> split_sentences(tf.constant(["Hola. ¿Qué tal? El Sr. Pérez llegó a las 8.30 a EE.UU."])).to_list()
    [[b'Hola.', b'\xc2\xbfQu\xc3\xa9 tal?', b'El Sr. P\xc3\xa9rez lleg\xc3\xb3 a las 8.30 a EE.UU.']]
    >>> split_sentences(tf.constant(['Dijo: "No voy. Voy luego." Y se fue. Bien.'])).to_list()
    [[b'Dijo: "No voy. Voy luego."', b'Y se fue.', b'Bien.']]
    """
    # The placeholders are control characters; any already in the text are spaces first.
    text = tf.strings.regex_replace(without_markers(text), _ABBREVIATION, r"\1" + _KEPT_STOP)
    text = tf.strings.regex_replace(text, _SENTENCE_END, r"\1" + _SPLIT + r"\2")
    pieces = tf.strings.strip(tf.strings.split(tf.strings.regex_replace(text, _KEPT_STOP, "."), _SPLIT))

    # Quote depth after each piece; a piece that starts inside a quotation continues the one before.
    def count(pattern):
        return tf.strings.length(
            tf.strings.regex_replace(pieces.flat_values, f"[^{pattern}]", ""), "UTF8_CHAR"
        )

    straight = tf.math.cumsum(pieces.with_flat_values(count('"')), axis=1) % 2
    curly = tf.math.cumsum(pieces.with_flat_values(count("“«") - count("”»")), axis=1)
    open_after = (straight.flat_values > 0) | (curly.flat_values > 0)
    first = tf.equal(tf.ragged.range(pieces.row_lengths()).flat_values, 0)
    continues = ~first & tf.pad(open_after[:-1], [[1, 0]])  # the piece before left a quote open
    group = tf.cumsum(tf.cast(~continues, tf.int64)) - 1  # a sentence per piece that starts one
    sentences = tf.strings.unsorted_segment_join(
        pieces.flat_values, group, tf.reduce_sum(tf.cast(~continues, tf.int32)), separator=" "
    )
    starts_per_text = tf.math.segment_sum(tf.cast(~continues, tf.int64), pieces.value_rowids())
    starts_per_text = tf.pad(starts_per_text, [[0, pieces.nrows() - tf.shape(starts_per_text, tf.int64)[0]]])
    sentences = tf.RaggedTensor.from_row_lengths(sentences, starts_per_text)
    return tf.ragged.boolean_mask(sentences, tf.strings.length(sentences) > 0)


# What counts as a name wherever names are found (training copies, the export, the names-kept
# metric): a capitalised word of 3+ letters. `NAME` for `tf.strings`, `looks_like_name` in Python.
NAME = r"\p{Lu}\p{L}{2,}"


def looks_like_name(word: str) -> bool:
    """`NAME` in Python.

    Example:
    >>> [looks_like_name(w) for w in ("Sánchez", "Tom", "Ed", "iPhone", "R2D2")]
    [True, True, False, False, False]
    """
    return len(word) >= 3 and word.isalpha() and word[0].isupper()


def tokenize_all(sentences: Sequence[str], lowercase: bool, batch: int = 8192) -> list[list[str]]:
    """Tokenises with the same in-graph function the exported model uses, in large batches."""
    tokens: list[list[str]] = []
    for i in range(0, len(sentences), batch):
        ragged = tokenize(tf.constant(list(sentences[i : i + batch])), lowercase)
        tokens.extend([t.decode("utf-8") for t in row] for row in ragged.to_list())
    return tokens
