import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq_app.core import decoding

END, PAD, START, V = 3, 0, 2, 8


def markov_step(table):
    """A step function whose next-token log-probabilities depend only on the previous token."""
    table = tf.constant(np.log(np.asarray(table, "float32") + 1e-9))

    def step(tokens, state):
        logits = tf.gather(table, tokens)
        attention = tf.one_hot(tf.fill(tf.shape(tokens), 0), 2)
        return logits, attention, state + 1

    return step


def table_with(rows):
    t = np.full((V, V), 1e-6, "float32")
    for prev, probs in rows.items():
        t[prev] = 1e-6
        for tok, p in probs.items():
            t[prev, tok] = p
    return t


# From START, greedy takes 4 (0.5) and then has to choose among weak options; the beam finds
# 5 -> 6 -> END, whose total probability (0.4 * 0.9 * 0.9) beats 0.5 * 0.3 * 0.9.
TABLE = table_with(
    {
        START: {4: 0.5, 5: 0.4, END: 0.1},
        4: {7: 0.3, 6: 0.3, END: 0.4},
        5: {6: 0.9, END: 0.1},
        6: {END: 0.9, 7: 0.1},
        7: {END: 1.0},
    }
)


def run_greedy(batch=2, limits=None):
    limits = tf.constant(limits or [10] * batch)
    return decoding.greedy_search(
        markov_step(TABLE), tf.zeros([batch]), tf.fill([batch], START), max_lengths=limits, end_id=END
    )


def test_greedy_follows_the_argmax_and_stops_at_end():
    tokens, attention = run_greedy()
    assert tokens.numpy().tolist() == [[4, END]] * 2
    assert attention.shape == (2, 2, 2)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_a_search_never_ends_before_its_first_token(search):
    """A model that ranks END first still writes something: an empty output would look like an
    answer."""
    step = markov_step(table_with({START: {END: 0.9, 6: 0.1}, 6: {END: 1.0}}))
    kwargs = {"max_lengths": tf.constant([5, 5]), "end_id": END}
    if search == "greedy":
        tokens, _ = decoding.greedy_search(step, tf.zeros([2]), tf.fill([2], START), **kwargs)
    else:
        tokens, _, _ = decoding.beam_search(
            step, tf.zeros([2]), tf.fill([2], START), beam_size=3, length_penalty=0.0, **kwargs
        )
        tokens = tokens[:, 0, :2]  # the other candidates may run longer
    assert tokens.numpy().tolist() == [[6, END]] * 2


def test_each_sequence_respects_its_own_length_limit_and_is_padded_after():
    step = markov_step(table_with({START: {5: 1.0}, 5: {5: 1.0}}))
    tokens, attention = decoding.greedy_search(
        step, tf.zeros([2]), tf.fill([2], START), max_lengths=tf.constant([2, 4]), end_id=END
    )
    assert tokens.numpy().tolist() == [[5, 5, PAD, PAD], [5, 5, 5, 5]]
    np.testing.assert_array_equal(attention.numpy()[0, 2:], 0.0)


def test_beam_search_finds_the_more_likely_sequence_and_ranks_candidates():
    tokens, scores, attention = decoding.beam_search(
        markov_step(TABLE),
        tf.zeros([1]),
        tf.fill([1], START),
        max_lengths=tf.constant([10]),
        beam_size=3,
        length_penalty=0.0,
        end_id=END,
    )
    assert tokens.numpy()[0, 0].tolist()[:3] == [5, 6, END]
    assert np.all(np.diff(scores.numpy()[0]) <= 0)  # best first
    np.testing.assert_allclose(scores.numpy()[0, 0], np.log(0.4 * 0.9 * 0.9), atol=1e-4)
    assert attention.shape[:2] == (1, 3)


def test_beam_size_one_equals_greedy():
    greedy_tokens, greedy_attention = run_greedy(batch=3, limits=[1, 5, 10])
    tokens, _, attention = decoding.beam_search(
        markov_step(TABLE),
        tf.zeros([3]),
        tf.fill([3], START),
        max_lengths=tf.constant([1, 5, 10]),
        beam_size=1,
        length_penalty=0.6,
        end_id=END,
    )
    np.testing.assert_array_equal(tokens.numpy()[:, 0], greedy_tokens.numpy())
    np.testing.assert_allclose(attention.numpy()[:, 0], greedy_attention.numpy())


def test_banned_tokens_are_never_produced():
    step = markov_step(table_with({START: {PAD: 0.9, 4: 0.1}, 4: {END: 1.0}}))
    tokens, _ = decoding.greedy_search(
        step,
        tf.zeros([1]),
        tf.fill([1], START),
        max_lengths=tf.constant([5]),
        end_id=END,
        banned_ids=(PAD, START),
    )
    assert tokens.numpy().tolist() == [[4, END]]


def test_sampling_at_zero_temperature_is_greedy_and_hot_sampling_varies():
    greedy, _ = run_greedy(batch=64)
    cold, _ = decoding.sample_search(
        markov_step(TABLE),
        tf.zeros([64]),
        tf.fill([64], START),
        max_lengths=tf.fill([64], 10),
        temperature=0.0,
        end_id=END,
    )
    np.testing.assert_array_equal(cold.numpy(), greedy.numpy())
    hot, _ = decoding.sample_search(
        markov_step(TABLE),
        tf.zeros([64]),
        tf.fill([64], START),
        max_lengths=tf.fill([64], 10),
        temperature=1.5,
        end_id=END,
        seed=1,
    )
    assert len({tuple(row) for row in hot.numpy().tolist()}) > 1


def test_length_penalty_factor_matches_gnmt():
    np.testing.assert_allclose(decoding.length_penalty_factor(tf.constant([1, 7]), 1.0).numpy(), [1.0, 2.0])


# A decoder that wants to loop forever: 4 -> 5 -> 6 -> 4 -> …, with END always its last choice.
LOOPING = table_with(
    {
        START: {4: 0.9, END: 0.01},
        4: {5: 0.9, 7: 0.05, END: 0.01},
        5: {6: 0.9, 7: 0.05, END: 0.01},
        6: {4: 0.9, 7: 0.05, END: 0.01},
        7: {4: 0.5, 5: 0.3, END: 0.2},
    }
)


def _ngrams(seq, n):
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def test_a_decoder_that_wants_to_loop_repeats_no_ngram_under_the_constraint():
    limits = tf.constant([30, 30])
    plain, _ = decoding.greedy_search(
        markov_step(LOOPING), tf.zeros([2]), tf.fill([2], START), max_lengths=limits, end_id=END
    )
    assert len(set(_ngrams(plain.numpy()[0].tolist(), 3))) < 5  # unconstrained, it loops to the limit
    for n in (2, 3, 4):
        step, state = decoding.no_repeat_ngrams(markov_step(LOOPING), tf.zeros([2]), n, 30)
        tokens, _ = decoding.greedy_search(step, state, tf.fill([2], START), max_lengths=limits, end_id=END)
        seq = [START] + [t for t in tokens.numpy()[0].tolist() if t != PAD]
        assert len(set(_ngrams(seq, n))) == len(_ngrams(seq, n)), (n, seq)
        assert seq[-1] == END and len(seq) < 30


def test_beam_search_under_the_constraint_repeats_no_ngram_and_beam_one_is_greedy():
    limits = tf.constant([25, 12, 0])
    step, state = decoding.no_repeat_ngrams(markov_step(LOOPING), tf.zeros([3]), 3, 25)
    greedy, _ = decoding.greedy_search(step, state, tf.fill([3], START), max_lengths=limits, end_id=END)
    beam1, _, _ = decoding.beam_search(
        step, state, tf.fill([3], START), max_lengths=limits, beam_size=1, length_penalty=0.0, end_id=END
    )
    np.testing.assert_array_equal(beam1.numpy()[:, 0], greedy.numpy())
    tokens, scores, _ = decoding.beam_search(
        step, state, tf.fill([3], START), max_lengths=limits, beam_size=4, length_penalty=0.6, end_id=END
    )
    for row in tokens.numpy()[:2].reshape(-1, tokens.shape[-1]):
        seq = [START] + [t for t in row.tolist() if t != PAD]
        assert len(set(_ngrams(seq, 3))) == len(_ngrams(seq, 3)), seq
    assert tokens.numpy()[2].sum() == 0  # an empty input stays empty


def scripted_step(script):
    """A step function that wants to write `script`, one token a step, then END."""
    table = tf.constant(np.log(np.eye(V, dtype="float32")[[*script, END]] * 0.9 + 0.01))

    def step(tokens, t):
        logits = tf.gather(table, tf.minimum(t, len(script)))
        return logits, tf.one_hot(tf.zeros_like(tokens), 2), t + 1

    return step


# Token ids 5 and 6 continue a word ("##ater", "##o" after "Zap" = 4); 7 is a word ("said").
WORD_STARTS = tf.constant([True, True, True, True, True, False, False, True])


def _search_under_ban(script, word_starts):
    step, state = decoding.no_repeat_ngrams(
        scripted_step(script), tf.zeros([1], tf.int32), 3, 20, word_starts
    )
    tokens, _ = decoding.greedy_search(
        step, state, tf.fill([1], START), max_lengths=tf.constant([20]), end_id=END, banned_ids=(PAD, START)
    )
    return [t for t in tokens.numpy()[0].tolist() if t != PAD]


def test_with_word_starts_a_word_of_many_pieces_may_recur_but_a_loop_of_words_may_not():
    name_twice = [4, 5, 6, 7, 4, 5, 6]  # "Zap ##ater ##o said Zap ##ater ##o"
    assert _search_under_ban(name_twice, WORD_STARTS) == [*name_twice, END]
    assert _search_under_ban(name_twice, None)[:7] != name_twice  # pieces alone: the name is cut
    seq = [START, *_search_under_ban([4, 7] * 6, WORD_STARTS)]  # "Zap said Zap said …"
    assert len(set(_ngrams(seq, 3))) == len(_ngrams(seq, 3)), seq
    seq = _search_under_ban([4, *[5] * 10], WORD_STARTS)  # "Zap ##ater ##ater ##ater …"
    starts = [i for i, t in enumerate(seq) if WORD_STARTS.numpy()[t]] + [len(seq)]
    for word in (seq[a:b] for a, b in zip(starts, starts[1:])):
        assert len(set(_ngrams(word, 3))) == len(_ngrams(word, 3)), seq
    assert seq[-1] == END and len(seq) < 20


def _banned_by_rule(history, n, starts):
    """The rule in words: after the last n-1 tokens, a token that would repeat an n-gram of
    `history` is banned; with `starts`, not one inside an earlier word (only inside the word
    being written, which begins at the last word start)."""
    tail = history[len(history) - n + 1 :]
    current = max([i for i, t in enumerate(history) if starts[t]], default=0) if starts else 0
    banned = set()
    for j in range(len(history) - n + 1):
        gram = history[j : j + n]
        inside = starts is not None and not any(starts[t] for t in gram[1:])
        if len(tail) == n - 1 and gram[:-1] == tail and (not inside or j + n - 1 >= current):
            banned.add(gram[-1])
    return banned


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 4),
    rows=st.integers(1, 3),
    tokens=st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), min_size=1, max_size=14),
    starts=st.one_of(st.none(), st.lists(st.booleans(), min_size=5, max_size=5)),
    seed=st.integers(0, 2**16),
)
def test_the_ban_follows_its_rule_at_every_step(n, rows, tokens, starts, seed):
    """The n-grams kept step by step ban exactly what the rule says, for every row alone, and
    when a search reorders or repeats rows between steps (as beam search does)."""
    rng = np.random.default_rng(seed)

    def step(tokens, state):
        return tf.zeros([rows, 5]), tf.zeros([rows, 2]), state

    word_starts = None if starts is None else tf.constant(starts)
    wrapped, state = decoding.no_repeat_ngrams(step, tf.zeros([rows]), n, len(tokens), word_starts)
    histories = [[] for _ in range(rows)]
    for written in tokens:
        written = written[:rows]
        logits, _, state = wrapped(tf.constant(written, tf.int32), state)
        histories = [h + [t] for h, t in zip(histories, written)]
        for r, history in enumerate(histories):
            banned = set(np.flatnonzero(logits.numpy()[r] <= decoding.NEG_INF).tolist())
            assert banned == _banned_by_rule(history, n, starts), history
        parents = rng.integers(0, rows, rows)
        state = tf.nest.map_structure(lambda s, p=parents: tf.gather(s, p), state)
        histories = [histories[p] for p in parents]


def test_the_constraint_changes_nothing_for_a_decoder_that_does_not_repeat():
    limits = tf.constant([10, 10])
    step, state = decoding.no_repeat_ngrams(markov_step(TABLE), tf.zeros([2]), 3, 10)
    tokens, _ = decoding.greedy_search(step, state, tf.fill([2], START), max_lengths=limits, end_id=END)
    np.testing.assert_array_equal(tokens.numpy(), run_greedy()[0].numpy())
    assert decoding.no_repeat_ngrams(markov_step(TABLE), tf.zeros([2]), 0, 10)[1].shape == (2,)


def test_beam_search_leaves_state_the_step_does_not_change_as_it_is():
    """A state part the step returns untouched is copied once, when the first step's row per
    sentence branches into beams, and never reordered after: the result is the same as when the
    step hands back a copy (which beam search reorders every step)."""
    markov = markov_step(TABLE)
    seen = []

    def step_with(copy):
        def step(tokens, state):
            context, counter = state
            seen.append(context)
            logits, attention, counter = markov(tokens, counter)
            # Each sentence's context favours its own token, so a row reordered across sentences
            # would change the output.
            logits = logits + 20.0 * tf.one_hot(tf.cast(context[:, 0], tf.int32), V)
            return logits, attention, (tf.identity(context) if copy else context, counter)

        return step

    def run(copy):
        return decoding.beam_search(
            step_with(copy),
            (tf.constant([[4.0], [7.0], [6.0]]), tf.zeros([3])),
            tf.fill([3], START),
            max_lengths=tf.constant([6, 6, 6]),
            beam_size=3,
            length_penalty=0.6,
            end_id=END,
        )

    kept = run(copy=False)
    assert [int(c.shape[0]) for c in seen[:3]] == [3, 9, 9] and seen[2] is seen[1]
    copied = run(copy=True)
    for a, b in zip(kept, copied):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert kept[0].numpy()[:, 0, 0].tolist() == [4, 7, 6]  # each sentence kept its own context


def countdown_step(rows_seen=None):
    """A step function whose rows write token 4 until their own countdown (the state) runs out,
    then END; given a list, it records there how many rows each (eager) step was asked for."""

    def step(tokens, countdown):
        if rows_seen is not None:
            rows_seen.append(int(tf.shape(tokens)[0]))
        logits = tf.where((countdown > 0)[:, None], tf.one_hot(4, V) * 5.0, tf.one_hot(END, V) * 5.0)
        attention = tf.one_hot(tf.fill(tf.shape(tokens), 0), 2)
        return logits, attention, countdown - 1

    return step


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_finished_rows_leave_the_search_and_every_row_decodes_as_alone(search):
    # Every search writes a token before END, so the shortest rows count down from 1.
    countdowns = tf.constant([1, 7, 1, 3, 1, 2, 1, 5])
    expected = [[4] * int(n) + [END] + [PAD] * (7 - int(n)) for n in countdowns]
    rows_seen = []

    def run(countdown):
        n = tf.shape(countdown)[0]
        common = {"max_lengths": tf.fill([n], 20), "end_id": END}
        step = countdown_step(rows_seen)
        if search == "greedy":
            return decoding.greedy_search(step, countdown, tf.fill([n], START), **common)[0]
        beams = decoding.beam_search(
            step, countdown, tf.fill([n], START), beam_size=2, length_penalty=0.6, **common
        )
        return beams[0][:, 0]

    together = run(countdowns).numpy()
    # A beam's other candidates may run longer; the best ones end as greedy's do.
    assert together[:, :8].tolist() == expected
    assert (together[:, 8:] == PAD).all()
    width = 2 if search == "beam" else 1
    # Beam search's first step runs one row per sentence, the beams branch from it.
    assert rows_seen[0] == 8 and rows_seen[1] == 8 * width and rows_seen[-1] == width
    assert all(a >= b for a, b in zip(rows_seen[1:], rows_seen[2:]))
    for row, countdown in enumerate(countdowns.numpy()):
        alone = run(tf.constant([countdown])).numpy()[0]
        np.testing.assert_array_equal(alone, together[row, : len(alone)])


def test_searches_in_a_graph_of_unknown_batch_size_decode_as_eagerly():
    """The exports trace the searches with an unknown batch size, where rows leave through
    `tf.cond` and shape invariants rather than Python."""
    countdowns = tf.constant([0, 7, 1, 3, 0, 2, 1, 5, 4])

    def searches(countdown):
        n = tf.shape(countdown)[0]
        common = {"state": countdown, "start_tokens": tf.fill([n], START), "max_lengths": tf.fill([n], 20)}
        greedy = decoding.greedy_search(countdown_step(), end_id=END, **common)
        beams = decoding.beam_search(
            countdown_step(), beam_size=tf.constant(3), length_penalty=0.6, end_id=END, **common
        )
        return (*greedy, *beams)

    graph = tf.function(searches, input_signature=[tf.TensorSpec([None], tf.int32)])
    for eager, traced in zip(searches(countdowns), graph(countdowns)):
        np.testing.assert_array_equal(eager.numpy(), traced.numpy())


@settings(max_examples=80, deadline=None)
@given(
    rows=st.integers(1, 4),
    vocab=st.integers(1, 40),
    k=st.integers(1, 12),
    block=st.integers(1, 9),
    levels=st.integers(1, 50),
    seed=st.integers(0, 2**16),
)
def test_top_k_by_blocks_equals_tensorflows_top_k(rows, vocab, k, block, levels, seed):
    """Values and indices as `tf.math.top_k`'s, ties (few `levels` of value) to the lower index,
    whatever the block size, a last block cut short, or k past the number of blocks."""
    k = min(k, vocab)
    logits = np.random.default_rng(seed).integers(0, levels, (rows, vocab)).astype("float32")
    logits[:, ::7] = decoding.NEG_INF  # banned columns
    values, indices = decoding.top_k(tf.constant(logits), tf.constant(k), block=block)
    expected_values, expected_indices = tf.math.top_k(logits, k)
    np.testing.assert_array_equal(values.numpy(), expected_values.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())


def test_beam_search_over_a_vocabulary_of_many_blocks_keeps_the_model_ranking():
    """With a vocabulary of many blocks of `top_k`, each candidate is a best-first beam of the
    step's scores: the same candidates as a search whose step offers the same choices in a
    vocabulary too small for blocks."""
    wide = 5 * decoding.TOP_K_BLOCK + 3
    spread = np.full((V, wide), 1e-9, "float32")
    spread[:, :V] = TABLE  # the same choices, then a long tail of near-impossible tokens
    common = {
        "state": tf.zeros([2]),
        "start_tokens": tf.fill([2], START),
        "max_lengths": tf.constant([10, 10]),
    }
    common |= {"beam_size": 4, "length_penalty": 0.6, "end_id": END}
    small = decoding.beam_search(markov_step(TABLE), **common)
    large = decoding.beam_search(markov_step(spread), **common)
    for a, b in zip(small[:2], large[:2]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)


def test_a_beam_wider_than_the_vocabulary_fills_with_distinct_candidates():
    """Beam 10 over 8 tokens: the first step has fewer candidates than beams (the rest start
    empty, below every real one); later steps fill the beam with distinct sequences, and the best
    ones are a beam of 8's."""
    common = {"state": tf.zeros([2]), "start_tokens": tf.fill([2], START), "max_lengths": tf.constant([6, 6])}
    common |= {"length_penalty": 0.6, "end_id": END}
    wide = decoding.beam_search(markov_step(TABLE), beam_size=10, **common)
    exact = decoding.beam_search(markov_step(TABLE), beam_size=V, **common)
    tokens, scores = wide[0].numpy(), wide[1].numpy()
    assert tokens.shape[:2] == (2, 10) and np.all(np.diff(scores, axis=1) <= 0)
    assert all(len({tuple(c) for c in row}) == 10 for row in tokens)
    best = exact[0].numpy()[:, :3]
    np.testing.assert_array_equal(tokens[:, :3, : best.shape[2]], best)
    assert (tokens[:, :3, best.shape[2] :] == PAD).all()
    # One step: the first step's candidates are all there is, so the empty beams stay, last.
    one = decoding.beam_search(
        markov_step(TABLE), beam_size=10, **common | {"max_lengths": tf.constant([1, 1])}
    )
    assert (one[1].numpy()[:, V:] < decoding.NEG_INF).all() and (one[0].numpy()[:, V:] == PAD).all()


def test_a_beam_search_with_nothing_to_search_runs_no_step():
    """Every limit 0 (empty sources): no step, no tokens, the start's scores with one beam live."""
    calls = []

    def step(tokens, state):
        calls.append(tokens)
        return markov_step(TABLE)(tokens, state)

    tokens, scores, attention = decoding.beam_search(
        step,
        tf.zeros([2]),
        tf.fill([2], START),
        max_lengths=tf.constant([0, 0]),
        beam_size=3,
        length_penalty=0.6,
        end_id=END,
    )
    assert not calls and tokens.shape == (2, 3, 0) and attention.shape[:3] == (2, 3, 0)
    np.testing.assert_array_equal(scores.numpy(), [[0.0, decoding.NEG_INF, decoding.NEG_INF]] * 2)
