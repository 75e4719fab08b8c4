import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq_app.core import metrics
from seq2seq_app.translation.name_swap import pair_names, swap_names
from tests.toy_data import write_pair_file
from training import translate

NAMES = ["Tom", "Ana", "Pedro", "Lucía", "Sevilla", "Einstein"]


def test_names_are_capitalised_words_both_sides_hold_that_the_target_never_writes_lowercase():
    source = ["el", "señor", "pérez", "vive", "en", "wall", "street", "con", "tom", "y", "ed", "."]
    target = ["Mr", "Pérez", "lives", "on", "Wall", "Street", "with", "Tom", "and", "Ed", "."]
    # "Street" is a common word of the target side; "Mr" is not in the source; "Ed" is too short.
    assert pair_names(source, target, common={"street", "lives"}) == ["Pérez", "Wall", "Tom"]
    assert pair_names(["tom", "tom"], ["Tom", "and", "Tom"], common=set()) == ["Tom"]
    assert pair_names(["r2d2"], ["R2d2"], common=set()) == []


def _corpus():
    pairs = [(f"{name.lower()} come pan .".split(), f"{name} eats bread .".split()) for name in NAMES]
    pairs.append(("el gato duerme .".split(), "The cat sleeps .".split()))
    return [s for s, _ in pairs], [t for _, t in pairs]


def test_each_copy_swaps_every_name_on_both_sides_for_another_name_of_the_corpus():
    sources, targets = _corpus()
    new_sources, new_targets = swap_names(sources, targets, weight=1.0, seed=3)
    assert len(new_sources) == len(new_targets) == len(NAMES)  # the cat's pair has no name
    for original, source, target in zip(NAMES, new_sources, new_targets):
        name = target[0]
        assert name in NAMES and name != original
        assert source == [name.lower(), "come", "pan", "."] and target[1:] == ["eats", "bread", "."]
    assert swap_names(sources, targets, weight=1.0, seed=3) == (new_sources, new_targets)


def test_the_weight_counts_copies_and_too_few_names_make_none():
    sources, targets = _corpus()
    assert swap_names(sources, targets, weight=0.0) == ([], [])
    assert len(swap_names(sources, targets, weight=2.0)[0]) == 2 * len(NAMES)
    assert len(swap_names(sources, targets, weight=0.5)[0]) == len(NAMES) // 2
    assert swap_names(sources[:1], targets[:1], weight=1.0) == ([], [])


def test_no_copy_becomes_a_held_out_sentence():
    sources, targets = _corpus()
    held_out = [f"¡{name} come pan!" for name in NAMES[1:]]  # every swap of Tom's pair but one
    new_sources, _ = swap_names(sources[:1] + sources[1:2], targets[:1] + targets[1:2], 1.0, 0, held_out)
    # Tom's pair (the pool is Tom and Ana) would become a held-out sentence; Ana's becomes Tom's.
    assert new_sources == [["tom", "come", "pan", "."]]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(["ve", "llama"])),
        min_size=2,
        max_size=12,
    ),
    st.integers(0, 5),
)
def test_copies_differ_from_their_pair_only_where_it_names_someone(triples, seed):
    sources = [[a.lower(), verb, b.lower()] for a, b, verb in triples]
    targets = [[a, {"ve": "sees", "llama": "calls"}[verb], b] for a, b, verb in triples]
    new_sources, new_targets = swap_names(sources, targets, 1.0, seed)
    assert len(new_sources) == (len(triples) if len({n for a, b, _ in triples for n in (a, b)}) > 1 else 0)
    for source, target, (a, b, verb) in zip(new_sources, new_targets, triples):
        assert source[1] == verb and target[1] == {"ve": "sees", "llama": "calls"}[verb]
        assert [w.lower() for w in target[::2]] == source[::2]
        assert target[0] != a and target[2] != b and set(target[::2]) <= set(NAMES)
        assert target[0] == target[2] or a != b  # one name, one swap for both of its mentions


def test_training_data_gains_the_swapped_copies_and_records_them(tmp_path):
    pairs = [
        (f"{a} sees {b}.", f"{a} ve a {b}.") for a in NAMES for b in NAMES if a != b and a != "Lucía"
    ] + [("The cat sleeps.", "El gato duerme.")] * 5
    corpus = write_pair_file(tmp_path / "names.txt", pairs)
    flags = ["--pairs", str(corpus), "--validation-fraction", "0.1", "--test-fraction", "0.1"]
    parser = translate.build_parser()
    (tmp_path / "plain").mkdir()
    (tmp_path / "swapped").mkdir()
    plain = translate.prepare(parser.parse_args(flags), tmp_path / "plain")
    swapped = translate.prepare(parser.parse_args([*flags, "--name-swaps", "1"]), tmp_path / "swapped")
    stats = swapped[-1]
    assert plain[-1]["name_swapped_pairs"] == 0 and stats["name_swapped_pairs"] > 0
    assert stats["train_pairs"] == plain[-1]["train_pairs"] + stats["name_swapped_pairs"]
    assert swapped[2].sources == plain[2].sources  # the same test split
    src_vocab = swapped[3]
    held = {" ".join(s.lower().rstrip(".").split()) for s in [*swapped[1].sources, *swapped[2].sources]}
    for ids in swapped[0]["train"][0][-stats["name_swapped_pairs"] :]:
        words = [src_vocab.tokens[i] for i in ids[:-1]]
        assert " ".join(w for w in words if w != ".") not in held


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "x"])
def test_a_bad_weight_is_a_clear_error(bad, capsys):
    with pytest.raises(SystemExit):
        translate.build_parser().parse_args(["--name-swaps", bad])
    assert "--name-swaps" in capsys.readouterr().err


def test_names_kept_counts_the_names_references_carry_over_that_outputs_write():
    sources = ["Pedro Sánchez visitó Sevilla.", "Tom duerme.", "El gato duerme."]
    references = ["Pedro Sánchez visited Seville.", "Tom is sleeping.", "The cat sleeps."]
    # Only "Sánchez" is carried over as written (Tom and Pedro open their sentences).
    kept = ["Pedro Sánchez went to Seville.", "Tom sleeps.", "x"]
    assert metrics.names_kept(sources, kept, references) == 100
    assert metrics.names_kept(sources, ["Pedro Sanchez went.", "Tom sleeps.", "x"], references) == 0
    assert metrics.names_kept(sources[1:], ["Tom sleeps.", "x"], references[1:]) is None
    with pytest.raises(ValueError, match="2 sources, 1 outputs"):
        metrics.names_kept(sources[:2], ["x"], references[:2])
