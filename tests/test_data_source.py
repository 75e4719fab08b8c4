import json

import pytest

from seq2seq_app.translation import data
from seq2seq_app.translation.data import ParallelCorpus
from seq2seq_app.translation.data_source import (
    BACK_TRANSLATION_TAG,
    DataSource,
    oversampled,
    per_source_tests,
    split_mixture,
)
from tests.toy_data import toy_pairs, write_pair_file
from training import translate
from training.run_state import check_same_run


def test_source_specs_parse_weights_and_aligned_prefixes():
    assert DataSource.parse("spa.txt") == DataSource("spa.txt")
    assert DataSource.parse("bt.tsv*0.5", synthetic=True) == DataSource("bt.tsv", None, 0.5, True)
    assert DataSource.parse("a*b/news*3", ("es", "en")) == DataSource("a*b/news.es", "a*b/news.en", 3.0)
    for bad in ("news*", "news*x", "news*0", "news*-2", "*3", "news*inf"):
        with pytest.raises(ValueError, match="PATH\\*WEIGHT"):
            DataSource.parse(bad)


def test_oversampling_repeats_whole_copies_and_samples_the_fraction():
    assert oversampled(5, 1.0) == list(range(5))
    assert sorted(oversampled(4, 3.0)) == sorted(list(range(4)) * 3)
    half = oversampled(10, 0.5, seed=2)
    assert len(half) == 5 and len(set(half)) == 5 and half == oversampled(10, 0.5, seed=2)
    assert len(oversampled(10, 2.3)) == 23


def _corpus(pairs):
    return ParallelCorpus([s for s, _ in pairs], [t for _, t in pairs])


def test_mixture_splits_keep_carved_sentences_out_of_training_and_synthetic_out_of_evaluation():
    tatoeba = _corpus([(f"frase {i}", f"sentence {i}") for i in range(40)])
    news = _corpus([(f"frase {i}", f"news {i}") for i in range(0, 80, 2)])  # shares sources with tatoeba
    back = _corpus([(f"sintética {i}", f"sentence {i}") for i in range(40)])  # shares targets
    sources = [
        (DataSource("t"), tatoeba),
        (DataSource("n", weight=3), news),
        (DataSource("b", synthetic=True), back),
    ]
    trains, val, test, report = split_mixture(sources, 0.1, 0.1, seed=0)
    held_sources, held_targets = set(val.sources + test.sources), set(val.targets + test.targets)
    assert held_sources and not any(s.startswith("sintética") for s in held_sources)
    for train in trains:
        assert not held_sources & set(train.sources)
    assert not held_targets & set(trains[2].targets)  # no back-translated reference of a test pair
    assert [row["weight"] for row in report] == [1.0, 3.0, 1.0]
    assert [row["synthetic"] for row in report] == [False, False, True]
    assert report[2]["validation_pairs"] == report[2]["test_pairs"] == 0
    for row, train in zip(report, trains):
        assert row["train_pairs"] == len(train)
        assert (
            row["pairs"]
            == row["train_pairs"]
            + row["held_out_overlap_dropped"]
            + row["validation_pairs"]
            + row["test_pairs"]
        )
    assert report[1]["held_out_overlap_dropped"] > 0 and report[2]["held_out_overlap_dropped"] > 0
    parts = per_source_tests(test, report)
    assert [name for name, _ in parts] == ["t", "n"]
    for (_, part), corpus in zip(parts, (tatoeba, news)):
        assert len(part) > 0 and set(zip(part.sources, part.targets)) <= set(
            zip(corpus.sources, corpus.targets)
        )


def test_held_out_sentences_are_also_recognised_respaced_recased_or_split_into_sentences():
    tatoeba = _corpus([(f"Hola {i}. ¿Qué tal?", f"Hi {i}. How are you?") for i in range(40)])
    trains, val, test, _ = split_mixture([(DataSource("t"), tatoeba)], 0.1, 0.1, seed=0)
    held = list(zip(val.sources + test.sources, val.targets + test.targets))
    source, target = held[0]
    first, second = target.split(". ")
    news = _corpus([(source.replace(" ", "  ").upper(), "other"), ("frase nueva", "new")])
    back = _corpus([("sintética a", first + "."), ("sintética b", second), ("sintética c", "Fresh.")])
    sources = [(DataSource("t"), tatoeba), (DataSource("n"), news), (DataSource("b", synthetic=True), back)]
    trains, *_ = split_mixture(sources, 0.1, 0.1, seed=0)
    assert trains[1].sources == ["frase nueva"]  # the respaced, upper-cased held-out source is gone
    assert trains[2].targets == ["Fresh."]  # so are both sentences of a held-out reference


@pytest.fixture
def mixed_files(tmp_path):
    tatoeba = write_pair_file(tmp_path / "tatoeba.txt", toy_pairs(120, seed=1))
    news = toy_pairs(30, seed=2)
    (tmp_path / "news.es").write_text("".join(f"{es}\n" for _, es in news), encoding="utf-8")
    (tmp_path / "news.en").write_text("".join(f"{en}\n" for en, _ in news), encoding="utf-8")
    back = write_pair_file(tmp_path / "bt.tsv", [(en, "Sintética " + es) for en, es in toy_pairs(20, seed=3)])
    return tatoeba, tmp_path / "news", back


def _prepare(flags, tmp_path):
    args = translate.build_parser().parse_args(
        [*flags, "--validation-fraction", "0.1", "--test-fraction", "0.1"]
    )
    return translate.prepare(args, tmp_path / "run")


@pytest.mark.parametrize("unit", ["word", pytest.param("subword", marks=pytest.mark.slow)])
def test_weighted_and_tagged_sources_are_mixed_and_listed(mixed_files, tmp_path, unit):
    tatoeba, news, back = mixed_files
    (tmp_path / "run").mkdir()
    flags = [
        "--pairs",
        str(tatoeba),
        "--aligned",
        f"{news}*3",
        "--synthetic-pairs",
        str(back),
        "--text-unit",
        unit,
    ]
    splits, _, test, src_vocab, _, stats = _prepare(flags, tmp_path)
    rows = stats["sources"]
    assert [(r["source"], r["pairs"], r["weight"], r["synthetic"]) for r in rows] == [
        (str(tatoeba), 120, 1.0, False),
        (f"{news}.es + {news}.en", 30, 3.0, False),
        (str(back), 20, 1.0, True),
    ]
    assert (
        stats["train_pairs"] == rows[0]["train_pairs"] + 3 * rows[1]["train_pairs"] + rows[2]["train_pairs"]
    )
    assert not any("Sintética" in s for s in test.sources)
    tag = src_vocab.tokens.index(BACK_TRANSLATION_TAG)
    tagged = [ids for ids in splits["train"][0] if ids[0] == tag]
    assert len(tagged) == rows[2]["train_pairs"]  # every synthetic source, and only they, start with the tag
    assert not any(ids[0] == tag for ids in splits["validation"][0])
    assert list(src_vocab.encode_numpy([["[", "bt", "]"]])[0]).count(tag) == 0  # typed text never is the tag


def test_one_pair_file_splits_and_encodes_as_before_plus_the_tag(tmp_path):
    corpus_path = write_pair_file(tmp_path / "toy.txt", toy_pairs(150, seed=4), extra_lines=("junk",))
    (tmp_path / "run").mkdir()
    splits, _, test, src_vocab, tgt_vocab, stats = _prepare(["--pairs", str(corpus_path)], tmp_path)
    corpus = data.read_pair_file(corpus_path, 1, 0)
    train, _, old_test = data.split_corpus(corpus, 0.1, 0.1, 0)
    from seq2seq_app.core.text import tokenize_all
    from seq2seq_app.core.vocabulary import RESERVED, Vocabulary

    src_tokens = tokenize_all(train.sources, lowercase=True)
    built = Vocabulary.build(src_tokens, 16000, 2).tokens
    # Plus the back-translation tag, which every new source vocabulary holds.
    assert src_vocab.tokens == [*RESERVED, BACK_TRANSLATION_TAG, *built[len(RESERVED) :]]
    assert [ids.tolist() for ids in splits["train"][0]] == [
        [*ids.tolist(), 3] for ids in src_vocab.encode_numpy(src_tokens)
    ]
    assert test.sources == old_test.sources and stats["malformed_lines"] == 1
    assert stats["sources"] == [
        {
            "source": str(corpus_path),
            "pairs": 150,
            "malformed_lines": 1,
            "weight": 1.0,
            "synthetic": False,
            "train_pairs": len(train),
            "held_out_overlap_dropped": 0,
            "validation_pairs": stats["validation_pairs"],
            "test_pairs": len(old_test),
        }
    ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pairs", "x*two"], "--pairs wants PATH"),
        (["--synthetic-pairs", "x"], "need a genuine source"),
        (["--tfds", "x", "--pairs", "y"], "choose the training data"),
        (["--aligned", "/nonexistent/news"], "cannot read the training data"),
    ],
)
def test_bad_source_flags_are_clear_errors(flags, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        _prepare(flags, tmp_path)


def test_runs_recorded_before_pairs_became_repeatable_still_resume(tmp_path):
    (tmp_path / "args.json").write_text(json.dumps({"pairs": "spa.txt", "source_file": None}))
    parser = translate.build_parser()
    check_same_run(tmp_path, parser.parse_args(["--pairs", "spa.txt"]), ["pairs"], record=False)
    with pytest.raises(SystemExit, match="--pairs"):
        check_same_run(tmp_path, parser.parse_args(["--pairs", "other.txt"]), ["pairs"], record=False)
    (tmp_path / "args.json").write_text(json.dumps({"pairs": None}))
    check_same_run(tmp_path, parser.parse_args(["--source-file", "a", "--target-file", "b"]), ["pairs"])


def test_a_flag_added_after_a_run_was_recorded_is_checked_at_its_default(tmp_path):
    (tmp_path / "args.json").write_text(json.dumps({"pairs": ["spa.txt"]}))  # before --text-unit, --aligned
    defining = translate.TranslateTask.run_defining_flags()
    defaults = {k: translate.build_parser().get_default(k) for k in defining}
    parser = translate.build_parser()

    def check(*flags):
        args = parser.parse_args(["--pairs", "spa.txt", *flags])
        check_same_run(tmp_path, args, ["pairs", "text_unit", "aligned"], record=False, defaults=defaults)

    check()
    for flags, name in ((["--text-unit", "subword"], "--text-unit"), (["--aligned", "news*3"], "--aligned")):
        with pytest.raises(SystemExit, match=name):
            check(*flags)


def test_a_config_file_lists_several_sources(tmp_path):
    from training.flags import parse_with_config

    config = tmp_path / "mix.json"
    config.write_text(json.dumps({"pairs": ["spa.txt", "more.txt*2"], "synthetic_pairs": ["bt.tsv*0.5"]}))
    args = parse_with_config(translate.build_parser(), ["--config", str(config), "--aligned", "news*3"])
    assert args.pairs == ["spa.txt", "more.txt*2"] and args.synthetic_pairs == ["bt.tsv*0.5"]
    assert args.aligned == ["news*3"]


def test_repeatable_flags_on_the_command_line_replace_the_config_list(tmp_path):
    from training.flags import parse_with_config

    config = tmp_path / "mix.json"
    config.write_text(json.dumps({"pairs": ["a.tsv", "b.tsv*2"], "aligned": ["news*3"]}))
    args = parse_with_config(translate.build_parser(), ["--config", str(config), "--pairs", "c.tsv"])
    assert args.pairs == ["c.tsv"] and args.aligned == ["news*3"]
