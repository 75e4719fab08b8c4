import collections

import tensorflow as tf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from seq2seq_app.core import text
from seq2seq_app.core.subword_vocabulary import CONTINUATION, SubwordVocabulary, _learn_merges
from seq2seq_app.core.vocabulary import UNK_ID

SPANISH = [
    "¿Dónde está la estación de autobuses?",
    "Los diabéticos insistieron en la tecnología.",
    "Llegamos a Sevilla a las 8:30, con 45 euros.",
    "Buenos días, señor Núñez: ¡qué alegría!",
    "Los aeropuertos están cerrados desde el 3.5.2024.",
]
ENGLISH = ["Where is the bus station?", "Diabetics insisted on technology.", "We arrived at 8:30."]


def _tokens(sentences):
    return text.tokenize(tf.constant(sentences, tf.string))


def _vocab(sentences, size=80) -> SubwordVocabulary:
    rows = [[t.decode() for t in row] for row in _tokens(sentences).to_list()]
    return SubwordVocabulary.learn(rows, vocab_size=size)


def _naive_bpe(word_counts: dict[str, int], num_pieces: int) -> list[str]:
    """Textbook BPE, recounting every pair after every merge (the reference for the fast one)."""
    words = {w: [w[0]] + [CONTINUATION + c for c in w[1:]] for w in word_counts}
    pieces = collections.Counter(p for w, n in word_counts.items() for p in words[w] for _ in range(n))
    vocab = sorted(pieces, key=lambda p: (-pieces[p], p))
    while len(vocab) < num_pieces:
        pairs = collections.Counter()
        for w, n in word_counts.items():
            for pair in zip(words[w], words[w][1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merged = best[0] + best[1][len(CONTINUATION) :]
        for w, pieces_of_w in words.items():
            out, j = [], 0
            while j < len(pieces_of_w):
                if j + 1 < len(pieces_of_w) and (pieces_of_w[j], pieces_of_w[j + 1]) == best:
                    out.append(merged)
                    j += 2
                else:
                    out.append(pieces_of_w[j])
                    j += 1
            words[w] = out
        if merged not in vocab:
            vocab.append(merged)
    return vocab


def test_incremental_bpe_learns_the_same_pieces_as_the_textbook_algorithm():
    counts = collections.Counter(t for s in SPANISH + ENGLISH for t in s.lower().split())
    for size in (20, 60, 120):
        assert _learn_merges(dict(sorted(counts.items())), size) == _naive_bpe(
            dict(sorted(counts.items())), size
        )


def test_segmentation_joins_back_to_the_words_for_accents_digits_punctuation_and_emoji():
    vocab = _vocab(SPANISH + ENGLISH)
    sentences = SPANISH + ENGLISH + ["😀 ¡Olé! 12:45", ""]
    words = _tokens(sentences)
    ids, pieces, word_index = vocab.segment(words)
    joined = [s.decode() for s in SubwordVocabulary.join(pieces).numpy()]
    assert joined == [" ".join(t.decode() for t in row) for row in words.to_list()]
    assert ids.row_lengths().numpy().tolist() == pieces.row_lengths().numpy().tolist()
    # word_index counts words from 0 within each sentence and only ever moves forward by one.
    for row, n in zip(word_index.to_list(), words.row_lengths().numpy()):
        assert row == sorted(row) and (not row or (row[0] == 0 and row[-1] == n - 1))


def test_words_of_seen_characters_are_never_unknown():
    vocab = _vocab(SPANISH)
    # New words, made only of characters the training text contains.
    ids, _, _ = vocab.segment(_tokens(["Sevillanos insistían: estación 83"]))
    assert UNK_ID not in ids.flat_values.numpy().tolist()


def test_unseen_characters_are_one_unknown_piece_each_and_reported():
    vocab = _vocab(SPANISH)
    words = _tokens(["sola 你好 amigo", "sin nada raro"])
    ids, pieces, _ = vocab.segment(words)
    unknown = [p for i, p in zip(ids[0].numpy(), pieces[0].numpy()) if i == UNK_ID]
    assert [p.decode().removeprefix(CONTINUATION) for p in unknown] == ["你", "好"]
    assert [s.decode() for s in vocab.unknown_characters(words).numpy()] == ["你好", ""]


def test_empty_batch_and_empty_sentences():
    vocab = _vocab(SPANISH)
    ids, pieces, word_index = vocab.segment(tf.ragged.constant([], tf.string, ragged_rank=1))
    assert ids.shape[0] == 0 and pieces.shape[0] == 0 and word_index.shape[0] == 0
    ids, _, _ = vocab.segment(_tokens(["", "   "]))
    assert ids.to_list() == [[], []]


def test_save_load_round_trip_and_graph_mode(tmp_path):
    vocab = _vocab(SPANISH)
    vocab.save(tmp_path / "pieces.txt")
    loaded = SubwordVocabulary.load(tmp_path / "pieces.txt")
    assert loaded.tokens == vocab.tokens

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def segment(texts):
        return loaded.segment(text.tokenize(texts))[0].to_tensor()

    eager = vocab.segment(_tokens(SPANISH))[0].to_tensor().numpy()
    assert (segment(tf.constant(SPANISH)).numpy() == eager).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=30), max_size=6))
def test_any_text_is_segmented_without_error_and_joins_back(sentences):
    vocab = _PROPERTY_VOCAB
    words = _tokens(sentences)
    ids, pieces, _ = vocab.segment(words)
    joined = [s.decode() for s in SubwordVocabulary.join(pieces).numpy()]
    # An empty token (the tokenizer leaves one for a NUL) has no pieces.
    assert joined == [" ".join(t.decode() for t in row if t) for row in words.to_list()]
    assert ((ids.flat_values.numpy() >= 0) & (ids.flat_values.numpy() < len(vocab))).all()


_PROPERTY_VOCAB = _vocab(SPANISH + ENGLISH)


def test_numpy_encoding_for_training_is_the_in_graph_segmentation():
    vocab = _vocab(SPANISH)
    rows = [[t.decode() for t in row] for row in _tokens(SPANISH + ["", "你好 sola"]).to_list()]
    encoded = vocab.encode_numpy(rows, batch=3)  # batches of 3: rows split across calls
    expected = vocab.segment(tf.ragged.constant(rows, tf.string))[0].to_list()
    assert [ids.tolist() for ids in encoded] == expected and encoded[-2].dtype == "int32"
    assert vocab.encode_numpy([]) == []


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.text("casob#é🙂", max_size=9), max_size=5), min_size=1, max_size=4),
    st.sampled_from([3, 24]),
)
@example([["casas", "cas", "##", "##as", "caso", "", "🙂"]], 3)
@example([["casas", "cas", "##", "##as", "caso", "", "🙂"]], 24)
def test_the_whole_word_shortcut_segments_exactly_as_longest_match_alone(sentences, max_piece_chars):
    # Pieces longer than max_piece_chars (never matched) and a bare "##" piece probe the shortcut's edges.
    vocab = SubwordVocabulary(
        ["casas", "cas", "##as", "a", "##a", "s", "##s", "o", "##o", "##"], max_piece_chars
    )
    words = tf.ragged.constant(sentences, tf.string, ragged_rank=1)
    ids, pieces, word_index = vocab.segment(words)
    alone, starts, spans = (t.numpy() for t in vocab._longest_match(words.flat_values))
    keep = alone >= 0
    # What the loop alone gives, sentence by sentence: (id, piece text, word position) per piece.
    expected, word = [], 0
    for sentence in sentences:
        row = []
        for position, token in enumerate(sentence):
            for j in keep[word].nonzero()[0]:
                piece = ("##" if starts[word, j] else "") + token[
                    starts[word, j] : starts[word, j] + spans[word, j]
                ]
                row.append((int(alone[word, j]), piece, position))
            word += 1
        expected.append(row)
    got = [
        list(zip(i, [p.decode() for p in t], w))
        for i, t, w in zip(ids.to_list(), pieces.to_list(), word_index.to_list())
    ]
    assert got == expected
