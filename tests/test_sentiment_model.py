import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core.vocabulary import UNK_ID, Vocabulary
from seq2seq_app.sentiment.review_tokenizer import ReviewTokenizer, split_units
from seq2seq_app.sentiment.sentiment_classifier import SentimentClassifier
from tests.layer_checks import check_config_round_trip, check_fit_and_save_load


def _decode(ragged):
    return [[t.decode() for t in row] for row in ragged.to_list()]


def test_char_units_drop_spaces_and_mark_word_starts_in_bigrams():
    units, bigrams = split_units(tf.constant(["너무 재밌어", "", "  ", "A b"]), "char")
    assert _decode(units) == [["너", "무", "재", "밌", "어"], [], [], ["a", "b"]]
    assert _decode(bigrams) == [["^너", "너무", " 재", "재밌", "밌어"], [], [], ["^a", " b"]]


def test_word_units_and_bigrams_align():
    units, bigrams = split_units(tf.constant(["Great movie!", "awful<br /><BR>"]), "word")
    assert _decode(units) == [["great", "movie", "!"], ["awful"]]
    assert _decode(bigrams) == [["^ great", "great movie", "movie !"], ["^ awful"]]


def test_unknown_unit_is_an_error():
    with pytest.raises(ValueError, match="Unknown unit"):
        split_units(tf.constant(["x"]), "syllable")
    with pytest.raises(ValueError, match="Unknown unit"):
        ReviewTokenizer(Vocabulary([]), None, "bpe", 10)


def test_tokenizer_truncates_pads_and_maps_unknown_units():
    tokenizer = ReviewTokenizer(Vocabulary(["좋", "다"]), Vocabulary(["^좋", "좋다"]), "char", max_tokens=3)
    inputs, units = tokenizer(tf.constant(["좋다 😀 좋다", "다"]))
    assert inputs["tokens"].numpy().tolist() == [[4, 5, UNK_ID], [5, 0, 0]]
    assert inputs["bigrams"].numpy().tolist() == [[4, 5, UNK_ID], [UNK_ID, 0, 0]]
    assert _decode(tf.RaggedTensor.from_tensor(units)) == [["좋", "다", "😀"], ["다", "", ""]]


def _inputs(batch=3, length=7, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 30, (batch, length)).astype("int32")
    tokens[1, 4:] = 0  # a shorter review
    bigrams = np.where(tokens > 0, rng.integers(1, 40, (batch, length)), 0).astype("int32")
    return {"tokens": tokens, "bigrams": bigrams}


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple_rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_prefix_score_equals_the_whole_review_score(cell, bidirectional):
    model = SentimentClassifier(
        30, 40, embedding_dim=8, units=12, cell=cell, num_layers=2, bidirectional=bidirectional
    )
    inputs = _inputs()
    final = np.asarray(model(inputs))
    per_token = np.asarray(model.token_logits(inputs))
    assert final.shape == (3,) and per_token.shape == (3, 7)
    lengths = (inputs["tokens"] > 0).sum(axis=1)
    np.testing.assert_allclose(per_token[np.arange(3), lengths - 1], final, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_prefix_scores_equal_scoring_each_prefix_alone(bidirectional):
    model = SentimentClassifier(30, 0, embedding_dim=8, units=12, bidirectional=bidirectional)
    tokens = _inputs()["tokens"][:1]
    per_token = np.asarray(model.token_logits({"tokens": tokens}))[0]
    for t in range(tokens.shape[1]):
        alone = np.asarray(model({"tokens": tokens[:, : t + 1]}))[0]
        np.testing.assert_allclose(per_token[t], alone, atol=1e-5)


def test_padding_does_not_change_scores():
    model = SentimentClassifier(30, 40, embedding_dim=8, units=12)
    inputs = _inputs()
    padded = {k: np.pad(v, [[0, 0], [0, 5]]) for k, v in inputs.items()}
    np.testing.assert_allclose(model(inputs), model(padded), atol=1e-5)
    np.testing.assert_allclose(
        model.token_logits(inputs), np.asarray(model.token_logits(padded))[:, :7], atol=1e-5
    )


@pytest.mark.slow  # a real fit and a save/load: seconds of CPU
def test_config_round_trip_and_fit_save_load(tmp_path):
    model = SentimentClassifier(
        30, 40, embedding_dim=8, units=12, cell="lstm", bidirectional=True, dropout=0.1
    )
    inputs = _inputs()
    check_config_round_trip(model, inputs)
    check_fit_and_save_load(
        model, inputs, np.array([1.0, 0.0, 1.0]), tmp_path, keras.losses.BinaryCrossentropy(from_logits=True)
    )


def test_without_bigrams_the_model_ignores_them():
    model = SentimentClassifier(30, 0, embedding_dim=8, units=12)
    inputs = _inputs()
    assert model.bigram_embedding is None
    np.testing.assert_allclose(model(inputs), model({"tokens": inputs["tokens"]}), atol=1e-6)
