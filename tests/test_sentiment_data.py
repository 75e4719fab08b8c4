import pytest
import tensorflow as tf

from seq2seq_app.core.vocabulary import Vocabulary
from seq2seq_app.sentiment import data
from seq2seq_app.sentiment.review_tokenizer import ReviewTokenizer
from tests.toy_data import SENTIMENT_FLAGS, toy_reviews, write_review_tsv


def test_reads_quoted_fields_and_counts_malformed_rows(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_bytes(
        "\ufeffid\tdocument\tlabel\n"
        '1\t"""최고""라는 말도 아깝다"\t0\n'  # NSMC-style quoting
        "2\t그냥 좋다\t1\n"
        "3\t\t1\n"  # empty review
        "4\t라벨 없음\n"  # missing column
        "5\t별점 다섯\t5\n"  # not a 0/1 label
        '6\t"열린 따옴표\t1\n'  # a stray quote spoils only its own row
        "7\t끝\t0\n".encode()
        + b"8\t\xff\xfe\t1\n"  # invalid UTF-8
    )
    reviews = data.read_labeled_tsv(path, "document", "label")
    assert reviews.texts[:2] == ['"최고"라는 말도 아깝다', "그냥 좋다"]
    assert reviews.labels[:2] == [0, 1]
    assert reviews.texts[-1] == "끝"
    assert reviews.malformed == 5 and len(reviews) == 3


def test_missing_column_or_empty_file_is_a_clear_error(tmp_path):
    path = write_review_tsv(tmp_path / "r.tsv", toy_reviews(3))
    with pytest.raises(ValueError, match="no column 'text'"):
        data.read_labeled_tsv(path, "text", "label")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        data.read_labeled_tsv(tmp_path / "empty.tsv", "document", "label")


def test_split_keeps_duplicate_reviews_together():
    reviews = data.LabeledReviews(
        ["좋다", "별로", "좋다", "최고", "최악", "좋다"] * 3, [1, 0, 1, 1, 0, 1] * 3
    )
    train, val, test = data.split_reviews(reviews, 0.25, 0.25, seed=3)
    assert len(train) + len(val) + len(test) == len(reviews)
    assert not set(train.texts) & set(test.texts) and not set(train.texts) & set(val.texts)


def test_dataset_batches_by_length_and_drops_empty_reviews():
    reviews = data.LabeledReviews(["좋다", "정말 좋은 영화였다", "  ", "별로"], [1, 1, 0, 0])
    tokenizer = ReviewTokenizer(
        Vocabulary(list("좋다정말은영화였별로")), Vocabulary(["^좋", "좋다"]), "char", 50
    )
    batches = list(data.make_dataset(reviews, tokenizer, batch_size=8, shuffle=False))
    seen = sum(int(labels.shape[0]) for _, labels in batches)
    assert seen == 3  # the whitespace-only review is left out
    for inputs, labels in batches:
        assert inputs["tokens"].shape == inputs["bigrams"].shape
        assert inputs["tokens"].dtype == tf.int32 and labels.dtype == tf.float32


def test_tfds_nsmc_builder_reads_local_files_offline(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    write_review_tsv(manual / "ratings_train.txt", toy_reviews(30), extra_lines=("31\t\t1",))
    reviews = data.read_tfds("nsmc", "train", "document", data_dir=tmp_path / "tfds", manual_dir=manual)
    assert len(reviews) == 30 and reviews.malformed == 0  # the empty row was skipped by the builder
    assert sorted(reviews.texts) == sorted(text for text, _ in toy_reviews(30))


def test_cli_rejects_bad_data_with_a_clear_message(tmp_path):
    from training import sentiment

    def run(path, *extra):
        args = sentiment.build_parser().parse_args(
            [
                "--tsv",
                str(path),
                "--run-dir",
                str(tmp_path / "run"),
                "--export-dir",
                str(tmp_path / "out"),
                *SENTIMENT_FLAGS,
                *extra,
            ]
        )
        return sentiment.run(args)

    with pytest.raises(SystemExit, match="cannot read"):
        run(tmp_path / "missing.tsv")
    one_label = write_review_tsv(tmp_path / "pos.tsv", [(t, 1) for t, _ in toy_reviews(60)])
    with pytest.raises(SystemExit, match="only one label"):
        run(one_label)
    with pytest.raises(SystemExit, match="no column"):
        run(one_label, "--text-column", "review")
    with pytest.raises(SystemExit, match="exactly one data source"):
        sentiment.run(
            sentiment.build_parser().parse_args(["--tfds", "imdb_reviews", "--tsv", str(one_label)])
        )
    assert not (tmp_path / "out").exists()


def test_tfds_imdb_reader_takes_text_and_integer_labels(monkeypatch):
    """imdb_reviews needs the network, so `tfds.load` is replaced by an in-memory dataset."""
    import tensorflow_datasets as tfds

    examples = {"text": [b"A gem.", b"", b"Dull <br /> and long."], "label": [1, 0, 0]}
    calls = []

    def fake_load(name, split, data_dir=None):
        calls.append((name, split))
        return tf.data.Dataset.from_tensor_slices(examples)

    monkeypatch.setattr(tfds, "load", fake_load)
    reviews = data.read_tfds("imdb_reviews", "train")
    assert calls == [("imdb_reviews", "train")]
    assert reviews.texts == ["A gem.", "Dull <br /> and long."] and reviews.labels == [1, 0]
    assert reviews.malformed == 1
