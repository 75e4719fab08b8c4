import numpy as np
import pytest

from seq2seq_app.core.vocabulary import END_ID, START_ID, Vocabulary
from seq2seq_app.translation import data


def test_pair_file_counts_malformed_lines(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_bytes(
        "Hi.\tHola.\nBye.\tAdiós.\tCC-BY attribution\n".encode()
        + b"no tab\n\t\nEmpty.\t  \n\xff\xfe\tbad\nOk.\tVale.\r\n"
    )
    corpus = data.read_pair_file(path, source_column=1, target_column=0)
    assert corpus.sources == ["Hola.", "Adiós.", "Vale."]
    assert corpus.targets == ["Hi.", "Bye.", "Ok."]
    assert corpus.malformed == 4
    reverse = data.read_pair_file(path, source_column=0, target_column=1)
    assert reverse.sources[0] == "Hi." and reverse.targets[0] == "Hola."


def test_aligned_files(tmp_path):
    (tmp_path / "a.de").write_text("eins\n\nzwei\n")
    (tmp_path / "a.en").write_text("one\nlost\ntwo\n")
    corpus = data.read_aligned_files(tmp_path / "a.de", tmp_path / "a.en")
    assert (corpus.sources, corpus.targets, corpus.malformed) == (["eins", "zwei"], ["one", "two"], 1)


def test_split_keeps_each_source_in_one_split_and_is_deterministic():
    sources = [f"s{i % 50}" for i in range(200)]
    corpus = data.ParallelCorpus(sources, [f"t{i}" for i in range(200)])
    train, val, test = data.split_corpus(corpus, 0.1, 0.1, seed=1)
    assert len(train) + len(val) + len(test) == 200
    assert not set(train.sources) & set(val.sources) and not set(train.sources) & set(test.sources)
    assert data.split_corpus(corpus, 0.1, 0.1, seed=1)[1].sources == val.sources


def test_truecaser_keeps_names_and_lowercases_sentence_starts():
    truecase = data.Truecaser([["I", "saw", "Tom", "."], ["the", "dog", "saw", "I"], ["Tom", "is", "here"]])
    assert truecase(["The", "dog"]) == ["the", "dog"]
    assert truecase(["Tom", "left"]) == ["Tom", "left"]
    assert truecase(["I", "am"]) == ["I", "am"]
    assert truecase([]) == []


def test_encode_pairs_adds_markers_and_drops_long_pairs():
    vocab = Vocabulary(["a", "b"])
    s, t, dropped = data.encode_pairs([["a"], ["a"] * 10], [["b"], ["b"]], vocab, vocab, max_length=5)
    assert dropped == 1
    assert s[0].tolist() == [4, END_ID] and t[0].tolist() == [START_ID, 5, END_ID]


def test_dataset_batches_are_bucketed_shifted_and_cover_every_pair():
    rng = np.random.default_rng(0)
    sources = [rng.integers(4, 20, rng.integers(2, 30)).astype("int32") for _ in range(300)]
    targets = [
        np.concatenate([[START_ID], rng.integers(4, 20, rng.integers(1, 30)), [END_ID]]).astype("int32")
        for _ in range(300)
    ]
    dataset = data.make_dataset(sources, targets, tokens_per_batch=128, max_length=40, shuffle=True)
    seen = 0
    for x, y in dataset:
        assert x["target_in"].shape == y.shape
        assert x["source"].shape[0] * max(x["source"].shape[1], y.shape[1] + 1) <= 128 * 2
        np.testing.assert_array_equal(
            x["target_in"].numpy()[:, 1:][y.numpy()[:, :-1] != 0], y.numpy()[:, :-1][y.numpy()[:, :-1] != 0]
        )
        seen += x["source"].shape[0]
    assert seen == 300


def test_tfds_reader_uses_the_named_keys(monkeypatch):
    """TFDS needs the network to download, so `tfds.load` is replaced by an in-memory dataset."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    examples = {"pt": ["olá mundo", "", "obrigado"], "en": ["hello world", "lost", "thanks"]}
    calls = []

    def fake_load(name, split, data_dir=None):
        calls.append((name, split))
        return tf.data.Dataset.from_tensor_slices(examples)

    monkeypatch.setattr(tfds, "load", fake_load)
    corpus = data.read_tfds("ted_hrlr_translate/pt_to_en", "train", "pt", "en")
    assert calls == [("ted_hrlr_translate/pt_to_en", "train")]
    assert corpus.sources == ["olá mundo", "obrigado"] and corpus.targets == ["hello world", "thanks"]
    assert corpus.malformed == 1


def test_byte_order_mark_is_not_part_of_the_first_sentence(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffHi.\tHola.\n".encode())
    corpus = data.read_pair_file(path, 1, 0)
    assert corpus.targets == ["Hi."]


def test_eval_pairs_read_pair_files_and_aligned_prefixes_with_clear_errors(tmp_path):
    from training import translate

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("The cat.\tEl gato.\nThe dog.\tEl perro.\n", encoding="utf-8")
    (tmp_path / "news.es").write_text("Hola.\nAdiós.\n", encoding="utf-8")
    (tmp_path / "news.en").write_text("Hello.\nGoodbye.\n", encoding="utf-8")
    parser = translate.build_parser()
    args = parser.parse_args(["--eval-pairs", f"toy={pairs}", "--eval-pairs", f"news={tmp_path / 'news'}"])
    sets = translate.read_eval_sets(args)
    assert list(sets["toy"].sources) == ["El gato.", "El perro."]
    assert list(sets["news"].targets) == ["Hello.", "Goodbye."]
    for bad, message in [("nameless", "NAME=PATH"), (f"x={tmp_path / 'none'}", "cannot read --eval-pairs x")]:
        with pytest.raises(SystemExit, match=message):
            translate.read_eval_sets(parser.parse_args(["--eval-pairs", bad]))


def test_evaluation_reports_the_loop_rate():
    from seq2seq_app.translation.data import ParallelCorpus
    from training import translate

    class Looping:
        def translate(self, sources, batch_size, beam_size=None):
            return ["and the and the and the and the" for _ in sources]

    corpus = ParallelCorpus(["uno", "dos"], ["one", "two"], 0)
    results = translate.evaluate(Looping(), corpus, beam_size=2, name="toy")
    assert results["greedy"]["loop_rate"] == 100.0 and results["beam2"]["loop_rate"] == 100.0
