import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app import LoadedSentimentClassifier, load_sentiment_classifier
from tests.plain_tf import run_with_tensorflow_alone
from tests.toy_data import toy_reviews

BAD_INPUTS = ["", "   \t\n ", "재밌다 " * 20000, "😀🎉👍", "x" * 100000]


@pytest.fixture(scope="module")
def classifier(sentiment_export):
    return LoadedSentimentClassifier(sentiment_export[0])


@pytest.fixture(scope="module")
def module(sentiment_export):
    """The raw SavedModel, loaded once: a load and each signature's first call cost seconds."""
    return tf.saved_model.load(str(sentiment_export[0]))


def test_classify_signature_contract(module):
    out = module.signatures["classify"](text=tf.constant(["진짜 최고 영화", "노잼 스토리"]))
    assert out["score"].dtype == tf.float32 and out["score"].shape == (2,)
    assert out["label"].dtype == tf.string and out["label"].shape == (2,)
    n = out["tokens"].shape[1]
    assert out["tokens"].dtype == tf.string and out["token_scores"].shape == (2, n)
    score, tokens, token_scores = out["score"].numpy(), out["tokens"].numpy(), out["token_scores"].numpy()
    assert np.all((score >= 0) & (score <= 1))
    assert set(out["label"].numpy()) <= {b"positive", b"negative"}
    assert [t.decode() for t in tokens[1] if t] == ["노", "잼", "스", "토", "리"]
    for i in range(2):
        real = tokens[i] != b""
        assert np.all(token_scores[i][~real] == 0)
        assert token_scores[i][real][-1] == pytest.approx(
            score[i], abs=1e-6
        )  # the trajectory ends at the score


def test_model_learned_the_toy_reviews(sentiment_export, classifier):
    card = sentiment_export[1]
    assert card["metrics"]["test"]["accuracy"] >= 85.0  # chance is 50
    assert classifier.classify("이번 영화 최고")["label"] == "positive"
    assert classifier.classify("이번 영화 최악")["label"] == "negative"


def test_trajectory_turns_where_the_review_turns(classifier):
    result = classifier.classify("영화 배우 연기 최고")
    scores = result["token_scores"]
    assert result["tokens"][-2:] == ["최", "고"]
    assert scores[-1] > scores[5] + 0.3  # the score jumps once "최고" has been read


def test_scores_do_not_depend_on_batch_padding(classifier):
    alone = classifier.classify("진짜 재밌다")
    batched = classifier.classify(["진짜 재밌다", "영화 배우 진짜 이번 스토리 연기 그냥 별로 " * 5])[0]
    assert alone["tokens"] == batched["tokens"]
    np.testing.assert_allclose(alone["token_scores"], batched["token_scores"], atol=1e-5)


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_inputs_give_a_sensible_output(classifier, text):
    result = classifier.classify(text)
    assert 0.0 <= result["score"] <= 1.0
    assert len(result["tokens"]) == len(result["token_scores"]) <= 200
    if not text.strip():
        assert result == {"score": 0.5, "label": "empty", "tokens": [], "token_scores": []}
    else:
        assert result["label"] in ("positive", "negative")


def test_invalid_utf8_and_empty_batches(classifier):
    out = classifier.run([b"\xff\xfe\xfd \xec\xb5\x9c\xea\xb3\xa0"])  # invalid bytes, then "최고"
    assert out["tokens"][0][0] == "\ufffd".encode()
    assert classifier.run([])["score"].shape == (0,)
    assert classifier.classify([]) == []
    assert len(classifier.classify(t for t in ["좋다", "별로"])) == 2  # a generator is read once
    with pytest.raises(TypeError, match="strings"):
        classifier.classify([1, 2])
    with pytest.raises(ValueError, match="batch_size"):
        classifier.classify(["a"], batch_size=0)
    with pytest.raises(FileNotFoundError, match="training.sentiment"):
        load_sentiment_classifier("/nonexistent")


def test_export_matches_the_keras_model(sentiment_export, module):
    from seq2seq_app.core.vocabulary import Vocabulary
    from seq2seq_app.sentiment.review_tokenizer import ReviewTokenizer
    from seq2seq_app.sentiment.sentiment_classifier import SentimentClassifier
    from seq2seq_app.sentiment.sentiment_export import SentimentExport

    export_dir, card = sentiment_export
    run_dir = export_dir.parent / "run"
    hp = card["hyperparameters"]
    vocab, bigrams = Vocabulary.load(run_dir / "vocab.txt"), Vocabulary.load(run_dir / "bigram_vocab.txt")
    tokenizer = ReviewTokenizer(vocab, bigrams, hp["unit"], hp["max_tokens"])
    keras.mixed_precision.set_global_policy("float32")
    model = SentimentClassifier(len(vocab), len(bigrams), hp["embedding_dim"], hp["units"], hp["cell"])
    inputs, _ = tokenizer(tf.constant([text for text, _ in toy_reviews(20, seed=5)]))
    model(inputs)
    model.load_weights(run_dir / "final.weights.h5")
    loaded = module.signatures["classify"]
    out = loaded(text=tf.constant([text for text, _ in toy_reviews(20, seed=5)]))
    np.testing.assert_allclose(out["score"].numpy(), tf.sigmoid(model(inputs)).numpy(), atol=1e-5)
    exporter = SentimentExport(model, tokenizer)  # held: tf.function methods keep only a weak reference
    in_memory = exporter.classify(tf.constant(["진짜 최고"]))
    assert in_memory["score"].numpy()[0] == pytest.approx(
        loaded(text=tf.constant(["진짜 최고"]))["score"].numpy()[0], abs=1e-6
    )


PLAIN_TF_SCRIPT = r"""
m = tf.saved_model.load(sys.argv[1])
out = m.signatures["classify"](text=tf.constant(["와! 진짜 재밌다", ""]))
assert out["score"].shape == (2,) and out["token_scores"].shape[0] == 2
print(out["label"].numpy()[0].decode(), out["label"].numpy()[1].decode())
"""


def test_saved_model_runs_with_tensorflow_alone(sentiment_export, tmp_path):
    labels = run_with_tensorflow_alone(PLAIN_TF_SCRIPT, sentiment_export[0], tmp_path).split()
    assert labels[0] in ("positive", "negative") and labels[1] == "empty"


def test_model_card_records_data_metrics_and_command(sentiment_export):
    export_dir, card = sentiment_export
    assert json.loads((export_dir / "model_card.json").read_text()) == card
    assert card["task"] == "sentiment"
    assert card["data"]["malformed_rows"] == 3
    assert card["training"]["command"].startswith("python -m ")
    assert card["export"]["signatures"] == "classify"


def test_large_batches_are_scored_in_length_chunks_without_reordering(classifier):
    texts = [("영화 " * (i % 37)) + ("최고" if i % 2 else "노잼") for i in range(150)]  # > 2 chunks
    batched = classifier.classify(texts)
    for i in (0, 1, 36, 73, 149):
        alone = classifier.classify(texts[i])
        assert batched[i]["tokens"] == alone["tokens"]
        np.testing.assert_allclose(batched[i]["token_scores"], alone["token_scores"], atol=1e-5)
