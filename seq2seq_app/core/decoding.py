"""Greedy, sampling and beam search over a step function, as graph code (core TF ops only).

Written by hand because no maintained library offers, for Keras 3, a beam search with a length
penalty and n-best output that runs inside an exported SavedModel with a runtime beam size
(keras-hub's samplers return one sequence for causal LMs with a fixed-length buffer).

Every search takes the model only as `step_fn(tokens, state) -> (logits, attention, state)`:
`tokens` int32 [n], `logits` float32 [n, vocab] (or wider: columns past the vocabulary must
score below every token, as an export's output table does), `attention` float32 [n, memory_length], and
`state` any nest of tensors whose first dimension is n (the models here pass a `DecoderState`).
So the same searches can drive any recurrent decoder, not only the translator's. Everything after
the start tokens is passed by keyword.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

StepFn = Callable[[tf.Tensor, object], tuple[tf.Tensor, tf.Tensor, object]]
NEG_INF = -1e9
TOP_K_BLOCK = 64  # columns per block in `top_k`


def _ban(logits: tf.Tensor, banned_ids: Sequence[int]) -> tf.Tensor:
    """`logits` [rows, vocab] with `banned_ids` (padding, start) removed from every choice."""
    if not banned_ids:
        return logits
    vocab = logits.shape[1]
    if vocab is None:
        bias = tf.reduce_sum(tf.one_hot(list(banned_ids), tf.shape(logits)[1], on_value=NEG_INF), 0)
    else:  # a constant, rather than a vector rebuilt on every step
        bias = np.zeros([vocab], np.float32)
        bias[list(banned_ids)] = NEG_INF
    return logits + bias


def top_k(logits: tf.Tensor, k, block: int = TOP_K_BLOCK) -> tuple[tf.Tensor, tf.Tensor]:
    """`tf.math.top_k(logits, k)` for [rows, vocab] logits: the same values and indices, ties to
    the lower index, for k up to vocab.

    TensorFlow's CPU top-k walks each row serially; for a beam over a vocabulary it was the
    search step's largest cost after the output product (beam 4 over 64 sentences, [256, 8,000]
    logits: 2.2 ms against 0.5 ms this way, 2-core AMD EPYC). Here the columns are cut into
    blocks of `block`; one pass takes each block's maximum, and only the k blocks with the
    largest maxima are searched. Exact: an entry of the top k whose block were not among them
    would rank behind those k blocks' maxima, k entries of the row, so it is not of the top k.
    The chosen blocks are read in column order, so ties still go to the lower column.
    """
    vocab = logits.shape[1]
    if vocab is None or vocab <= block:
        return tf.math.top_k(logits, k)
    padding = -vocab % block
    blocks = (vocab + padding) // block
    rows = tf.shape(logits)[0]
    if padding:  # -inf: below every logit, and after every column, so never taken before one
        logits = tf.pad(logits, [[0, 0], [0, padding]], constant_values=-np.inf)
    grid = tf.reshape(logits, [rows, blocks, block])
    # Past `blocks` blocks every block is read: then this is a top-k over the whole row.
    _, chosen = tf.math.top_k(tf.reduce_max(grid, axis=-1), tf.minimum(k, blocks), sorted=False)
    chosen = tf.sort(chosen, axis=-1)
    candidates = tf.reshape(tf.gather(grid, chosen, batch_dims=1), [rows, -1])
    values, at = tf.math.top_k(candidates, k)
    return values, tf.gather(chosen, at // block, batch_dims=1) * block + at % block


def _no_end_first(logits: tf.Tensor, t: tf.Tensor, end_id: int) -> tf.Tensor:
    """`logits` [rows, vocab] with `end_id` removed from the first step's choices: a search that
    runs at all writes at least one token before END, rather than an empty output that looks like
    an answer (a weak model can rank END first)."""
    end = tf.one_hot(end_id, tf.shape(logits)[1], on_value=NEG_INF, off_value=0.0)
    return tf.cond(tf.equal(t, 0), lambda: logits + end, lambda: logits)


def _without_finished(
    done: tf.Tensor, per_unit: object, per_row: object = (), group: int | tf.Tensor = 1
) -> tuple:
    """The values of the units not `done` [units], once at least a quarter of them are done;
    otherwise the values as they are. `per_unit` tensors have one row per unit, `per_row` ones
    `group` consecutive rows per unit (a sentence's beams). Returns (per_unit, per_row).

    A batch runs as many steps as its longest output, and on Tatoeba-style batches of 64 only
    about half of the row-steps belong to a sequence still being written: the rest recompute
    finished rows (the output projection over the vocabulary, mostly) only to throw them away.
    Leaving them out copies the remaining state, so it is done in a few large drops rather than
    one row at a time. Rows never interact in a step, so greedy and beam search decode what is
    left as before, up to float rounding where a product's kernel changes with its number of
    rows (sampling draws its random numbers by row, so a seeded sample changes).
    """
    live = tf.logical_not(done)

    def drop():
        keep = tf.where(live)[:, 0]
        rows = tf.reshape(keep[:, None] * tf.cast(group, tf.int64) + tf.range(group, dtype=tf.int64), [-1])
        return (
            tf.nest.map_structure(lambda x: tf.gather(x, keep), per_unit),
            tf.nest.map_structure(lambda x: tf.gather(x, rows), per_row),
        )

    units = tf.shape(done)[0]
    return tf.cond(4 * tf.reduce_sum(tf.cast(live, tf.int32)) <= 3 * units, drop, lambda: (per_unit, per_row))


def _rows_dynamic(values: object, every_dimension: bool = False) -> object:
    """Shape invariants for the tensors in `values` whose first dimension (with `every_dimension`:
    every one) may change in a loop; the other dimensions stay known to the step inside."""

    def invariant(x: tf.Tensor) -> tf.TensorShape:
        if x.shape.rank is None:
            return tf.TensorShape(None)
        return tf.TensorShape([None] * x.shape.rank if every_dimension else [None, *x.shape[1:]])

    return tf.nest.map_structure(invariant, values)


def _token_loop(
    step_fn: StepFn, state, start_tokens, *, max_lengths, end_id, pad_id, banned_ids, select
) -> tuple[tf.Tensor, tf.Tensor]:
    """Runs `select(logits) -> tokens` until every sequence ends or reaches its own max length.

    Returns tokens [batch, time] (padding after the end) and attention [batch, time, memory].
    """
    batch = tf.shape(start_tokens)[0]

    def body(t, rows, tokens, finished, max_lengths, state, token_ta, attention_ta):
        logits, attention, state = step_fn(tokens, state)
        logits = _no_end_first(_ban(logits, banned_ids), t, end_id)
        tokens = tf.where(finished, pad_id, tf.cast(select(logits), tf.int32))
        attention = tf.where(finished[:, None], 0.0, attention)
        # `rows` are the batch rows still decoded; the outputs keep every row of the batch.
        at = rows[:, None]
        token_ta = token_ta.write(t, tf.tensor_scatter_nd_update(tf.fill([batch], pad_id), at, tokens))
        full = tf.concat([[batch], tf.shape(attention)[1:]], 0)
        attention_ta = attention_ta.write(t, tf.scatter_nd(at, attention, full))
        finished = finished | tf.equal(tokens, end_id) | (t + 1 >= max_lengths)
        (rows, tokens, finished, max_lengths, state), _ = _without_finished(
            finished, (rows, tokens, finished, max_lengths, state)
        )
        return t + 1, rows, tokens, finished, max_lengths, state, token_ta, attention_ta

    shrinking = (tf.range(batch), tf.cast(start_tokens, tf.int32), max_lengths <= 0, max_lengths, state)
    _, _, _, _, _, _, token_ta, attention_ta = tf.while_loop(
        lambda t, rows, tokens, finished, *_: tf.logical_not(tf.reduce_all(finished)),
        body,
        (
            tf.constant(0),
            *shrinking,
            tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None]),
            tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False),
        ),
        shape_invariants=(
            tf.TensorShape([]),
            *_rows_dynamic(shrinking),
            *[tf.TensorShape(None)] * 2,  # a TensorArray's shape is its elements', checked on write
        ),
    )
    # Time-major → batch-major; a batch whose sequences were all empty ran no step at all.
    return tf.cond(
        token_ta.size() > 0,
        lambda: (tf.transpose(token_ta.stack()), tf.transpose(attention_ta.stack(), [1, 0, 2])),
        lambda: (tf.zeros([batch, 0], tf.int32), tf.zeros([batch, 0, 0])),
    )


def greedy_search(
    step_fn: StepFn,
    state,
    start_tokens,
    *,
    max_lengths,
    end_id: int,
    pad_id: int = 0,
    banned_ids: Sequence[int] = (),
) -> tuple[tf.Tensor, tf.Tensor]:
    """Picks the most likely token at every step.

    Args:
        step_fn: the model's one-step function (see module docstring).
        state: initial decoding state, first dimension batch.
        start_tokens: int32 [batch] first input tokens.
        max_lengths: int32 [batch], each sequence's own step limit (so batching a sentence with
            others never changes its output).
        end_id: the token that ends a sequence (included in the output; never its first token).
        pad_id: written after a sequence ends.
        banned_ids: tokens never produced.

    Returns:
        tokens: int32 [batch, time]; attention: float32 [batch, time, memory].

    Example:
    >>> tokens, attention = greedy_search(
    ...     model.decode_step, state, starts, max_lengths=limits, end_id=3
    ... )  # doctest: +SKIP
    """
    return _token_loop(
        step_fn,
        state,
        start_tokens,
        max_lengths=max_lengths,
        end_id=end_id,
        pad_id=pad_id,
        banned_ids=banned_ids,
        select=lambda logits: tf.argmax(logits, axis=-1),
    )


def sample_search(
    step_fn: StepFn,
    state,
    start_tokens,
    *,
    max_lengths,
    temperature,
    end_id: int,
    pad_id: int = 0,
    banned_ids: Sequence[int] = (),
    seed: int | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Samples each token from softmax(logits / temperature); temperature ≤ 0 means greedy.

    Args and returns as `greedy_search`, plus `temperature` (float32 scalar) and `seed`.
    """
    temperature = tf.cast(temperature, tf.float32)

    def select(logits):
        return tf.cond(
            temperature > 0.0,
            lambda: tf.random.categorical(logits / temperature, 1, seed=seed)[:, 0],
            lambda: tf.argmax(logits, axis=-1),
        )

    return _token_loop(
        step_fn,
        state,
        start_tokens,
        max_lengths=max_lengths,
        end_id=end_id,
        pad_id=pad_id,
        banned_ids=banned_ids,
        select=select,
    )


def length_penalty_factor(lengths, alpha) -> tf.Tensor:
    """GNMT length penalty ((5 + length) / 6) ** alpha (Wu et al., 2016); alpha 0 disables it."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, tf.cast(alpha, tf.float32))


def beam_search(
    step_fn: StepFn,
    state,
    start_tokens,
    *,
    max_lengths,
    beam_size,
    length_penalty,
    end_id: int,
    pad_id: int = 0,
    banned_ids: Sequence[int] = (),
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Keeps the `beam_size` best partial sequences; returns all of them, best first.

    Finished hypotheses stay in the beam (extended by padding at no cost), and the final ranking
    divides each total log-probability by `length_penalty_factor(length, length_penalty)`.
    With `beam_size` 1 this is exactly `greedy_search`.

    Args:
        step_fn, state, start_tokens, max_lengths, end_id, pad_id, banned_ids: as `greedy_search`.
        beam_size: int32 scalar, may be a runtime tensor.
        length_penalty: float32 scalar alpha; larger favours longer outputs.

    Returns:
        tokens: int32 [batch, beam, time], candidates best first.
        scores: float32 [batch, beam], length-normalised log-probabilities.
        attention: float32 [batch, beam, time, memory].
    """
    k = tf.cast(beam_size, tf.int32)
    batch = tf.shape(start_tokens)[0]
    # Every beam of a sentence starts from the same state, so the first step runs one beam per
    # sentence (`beams` is 1) rather than k copies of the same row; its k best tokens then
    # start the k beams.
    limits = tf.reshape(max_lengths, [batch, 1])
    # What the loop steps through shrinks as sentences finish (see `_without_finished`):
    # `sentences` are the batch's sentences still searched, and the outputs and the final scores
    # and lengths keep every sentence of the batch.
    shrinking = (tf.range(batch), tf.zeros([batch, 1]), limits <= 0, tf.zeros([batch, 1], tf.int32), limits)
    shrinking_rows = (tf.cast(start_tokens, tf.int32), state)
    unmoved_parents = tf.tile(tf.range(k)[None], [batch, 1])

    def body(t, sentences, log_probs, finished, lengths, limits, tokens, state, *outputs):
        final_log_probs, final_lengths, token_ta, parent_ta, attention_ta = outputs
        n, beams = tf.shape(log_probs)[0], tf.shape(log_probs)[1]
        logits, attention, new_state = step_fn(tokens, state)
        logits = _ban(logits, banned_ids)
        # Scores stay the model's log-probabilities: END is left out of the first step's
        # candidates, not of the normalisation.
        norm = tf.reduce_logsumexp(logits, axis=1, keepdims=True)
        # The k best continuations of the whole beam are among each beam's own k best tokens, so
        # only those k · k candidates are scored and ranked: the [rows, vocab] log-softmax, the
        # finished-beam mask over the vocabulary and a top-k over k · vocab entries per sentence
        # cost more. A finished beam's only continuation is padding, at no cost.
        per_beam = tf.minimum(k, tf.shape(logits)[1])
        best, best_tokens = top_k(_no_end_first(logits, t, end_id), per_beam)
        best = tf.reshape(best - norm, [n, beams, per_beam])
        best_tokens = tf.reshape(best_tokens, [n, beams, per_beam])
        pad_only = tf.one_hot(0, per_beam, on_value=0.0, off_value=NEG_INF)
        best = tf.where(finished[:, :, None], pad_only, best)
        best_tokens = tf.where(finished[:, :, None], pad_id, best_tokens)
        # A vocabulary smaller than k offers the first step fewer than k candidates: the rest are
        # empty beams (padding, no length, no attention), finished at once, scored below every
        # candidate of that step.
        missing = tf.maximum(k - beams * per_beam, 0)
        candidates = tf.pad(
            tf.reshape(log_probs[:, :, None] + best, [n, -1]),
            [[0, 0], [0, missing]],
            constant_values=2 * NEG_INF,
        )
        log_probs, index = tf.math.top_k(candidates, k)
        empty = index >= beams * per_beam
        parents = tf.minimum(index // per_beam, beams - 1)
        new_tokens = tf.gather(
            tf.pad(tf.reshape(best_tokens, [n, -1]), [[0, 0], [0, missing]]), index, batch_dims=1
        )
        was_finished = tf.gather(finished, parents, batch_dims=1)
        padding = was_finished | empty
        lengths = tf.gather(lengths, parents, batch_dims=1) + tf.cast(~padding, tf.int32)
        new_tokens = tf.where(padding, pad_id, new_tokens)
        finished = padding | tf.equal(new_tokens, end_id) | (t + 1 >= limits)
        attention = tf.gather(tf.reshape(attention, [n, beams, -1]), parents, batch_dims=1)
        attention = tf.where(padding[:, :, None], 0.0, attention)
        flat_parents = tf.reshape(parents + (tf.range(n) * beams)[:, None], [-1])
        # A part of the state the step hands back untouched (the memory, its mask and keys) is
        # the same for every beam of a sentence, and a parent is always a beam of the same
        # sentence, so after the first step reordering would copy it onto itself: only the
        # first step's gather, which makes the k beams, copies it.
        state = tf.nest.map_structure(
            lambda old, new: (
                tf.cond(beams < k, lambda: tf.gather(new, flat_parents), lambda: new)
                if new is old
                else tf.gather(new, flat_parents)
            ),
            state,
            new_state,
        )
        at = sentences[:, None]
        full = tf.concat([[batch, k], tf.shape(attention)[2:]], 0)
        outputs = (
            tf.tensor_scatter_nd_update(final_log_probs, at, log_probs),
            tf.tensor_scatter_nd_update(final_lengths, at, lengths),
            token_ta.write(t, tf.tensor_scatter_nd_update(tf.fill([batch, k], pad_id), at, new_tokens)),
            parent_ta.write(t, tf.tensor_scatter_nd_update(unmoved_parents, at, parents)),
            attention_ta.write(t, tf.scatter_nd(at, attention, full)),
        )
        units, rows = _without_finished(
            tf.reduce_all(finished, axis=1),
            (sentences, log_probs, finished, lengths, limits),
            (tf.reshape(new_tokens, [-1]), state),
            group=k,
        )
        return (t + 1, *units, *rows, *outputs)

    outputs = (
        # A batch with nothing to search runs no step: its scores are the start's, one beam live.
        tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)[None], [batch, 1]),
        tf.zeros([batch, k], tf.int32),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, None]),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, None]),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False),
    )
    *_, log_probs, lengths, token_ta, parent_ta, attention_ta = tf.while_loop(
        lambda t, sentences, log_probs, finished, *_: tf.logical_not(tf.reduce_all(finished)),
        body,
        (tf.constant(0), *shrinking, *shrinking_rows, *outputs),
        shape_invariants=(
            tf.TensorShape([]),
            # The beam dimension may enter known and leave a step unknown (the per-beam top-k's
            # width is a tensor).
            *_rows_dynamic(shrinking, every_dimension=True),
            *_rows_dynamic(shrinking_rows),
            *_rows_dynamic(outputs[:2], every_dimension=True),
            *[tf.TensorShape(None)] * 3,
        ),
    )
    scores = log_probs / length_penalty_factor(tf.maximum(lengths, 1), length_penalty)
    scores, order = tf.math.top_k(scores, k)
    tokens, attention = _backtrack(token_ta, parent_ta, attention_ta, order, batch, k)
    return tokens, scores, attention


def _backtrack(token_ta, parent_ta, attention_ta, order, batch, k):
    """Follows parent pointers from the final beams back to step 0."""
    steps = token_ta.size()

    def body(t, beam, token_out, attention_out):
        t = t - 1
        token_out = token_out.write(t, tf.gather(token_ta.read(t), beam, batch_dims=1))
        attention_out = attention_out.write(t, tf.gather(attention_ta.read(t), beam, batch_dims=1))
        return t, tf.gather(parent_ta.read(t), beam, batch_dims=1), token_out, attention_out

    _, _, token_out, attention_out = tf.while_loop(
        lambda t, *_: t > 0,
        body,
        (
            steps,
            order,
            tf.TensorArray(tf.int32, size=steps, element_shape=[None, None]),
            tf.TensorArray(tf.float32, size=steps, infer_shape=False),
        ),
    )
    return tf.cond(
        steps > 0,
        lambda: (
            tf.transpose(token_out.stack(), [1, 2, 0]),
            tf.transpose(attention_out.stack(), [1, 2, 0, 3]),
        ),
        lambda: (tf.zeros([batch, k, 0], tf.int32), tf.zeros([batch, k, 0, 0])),
    )


def fit_memory_columns(attention: tf.Tensor, width) -> tf.Tensor:
    """Attention [batch, time, memory] with exactly `width` memory columns: a batch that decoded
    no step comes back with none, and callers want the memory's own width."""
    attention = attention[..., :width]
    return tf.pad(attention, [[0, 0], [0, 0], [0, width - tf.shape(attention)[2]]])


def no_repeat_ngrams(
    step_fn: StepFn, state, ngram_size: int, max_steps, word_starts: tf.Tensor | None = None
) -> tuple[StepFn, object]:
    """Wraps a step function so no sequence produces the same `ngram_size`-gram twice.

    This is the "no repeat n-gram" constraint of Paulus et al. (2018) and fairseq: once a
    sequence has written `a b c`, after `a b` the token `c` is banned. It stops the loops of a
    weak decoder ("and director del and director del …") without touching its other choices.
    The n-grams each sequence has written travel in the decoding state, so beam search reorders
    them with the rest of the state and every search works unchanged.

    With subword tokens a plain ban would also forbid every word of n or more pieces from
    recurring ("Zap ##ater ##o … Zap ##ater ##o"): a name mentioned twice would come out
    misspelt the second time. Given `word_starts`, an n-gram lying inside one word may recur in
    a later word; n-grams that cross into another word, and repeats within the word being
    written, are banned, so loops of words or of pieces still are.

    Args:
        step_fn: the model's one-step function.
        state: its initial state, first dimension batch.
        ngram_size: n; 0 or 1 disables the constraint (returns the inputs unchanged).
        max_steps: int32 scalar, an upper bound on the steps any sequence will take.
        word_starts: bool [vocab], whether each token begins a word (subword vocabularies), or
            None when every token is a word.

    Returns:
        The wrapped step function and its initial state.

    Example:
    >>> step, state = no_repeat_ngrams(model.decode_step, state, 3, 100)  # doctest: +SKIP
    >>> tokens, attention = greedy_search(step, state, starts, max_lengths=limits, end_id=3)  # doctest: +SKIP
    """
    if ngram_size < 2:
        return step_fn, state
    n = ngram_size
    batch = tf.shape(tf.nest.flatten(state)[0])[0]
    width = tf.cast(max_steps, tf.int32) + 1  # the start token, then one token per step

    # The state keeps every n-gram written so far, each at the position of its last token, rather
    # than the tokens themselves: a step then compares its last n-1 tokens with every n-gram's
    # first n-1 in one product of equalities, instead of slicing the n-grams out of the history
    # anew (half the ops of the loop's wrapper, and a one-sentence search is bound by op count).
    # -1 fills what is not an n-gram yet: an n-gram that still holds it never matches a tail.
    def step(tokens, wrapped):
        inner, ngrams, tail, count, words = wrapped
        completed = tf.concat([tail, tokens[:, None]], axis=1)  # [rows, n], ended by this token
        at = tf.one_hot(count, width, on_value=True, off_value=False)
        if word_starts is not None:
            inside, recent = words
            begins = tf.gather(word_starts, tokens)
            recent = tf.where(begins, 0, recent + 1)  # tokens since the last word start
            # A new word: the n-grams inside earlier words may recur from now on (a name said
            # again); those inside the word being written may not (a loop "ja ##ja ##ja").
            ngrams = tf.where((begins[:, None] & inside)[:, :, None], -1, ngrams)
            # It crosses into another word when one of its last n-1 tokens begins a word.
            words = tf.where(at, (recent >= n - 1)[:, None], inside), recent
        ngrams = tf.where(at[:, :, None], completed[:, None, :], ngrams)
        logits, attention, inner = step_fn(tokens, inner)
        tail = completed[:, 1:]
        return _ban_repeats(logits, ngrams, tail), attention, (inner, ngrams, tail, count + 1, words)

    # Per n-gram whether it lies inside one word, and per row the tokens since the last word
    # start (n: none yet).
    words = () if word_starts is None else (tf.zeros([batch, width], tf.bool), tf.fill([batch], n))
    return step, (
        state,
        tf.fill([batch, width, n], -1),
        tf.fill([batch, n - 1], -1),
        tf.zeros([batch], tf.int32),
        words,
    )


def _ban_repeats(logits, ngrams, tail) -> tf.Tensor:
    """`logits` with NEG_INF for every token that would complete one of `ngrams` [rows, width, n]
    from the last n-1 tokens `tail` [rows, n-1]."""
    match = tf.reduce_all(tf.equal(ngrams[:, :, :-1], tail[:, None, :]), axis=-1)
    where = tf.cast(tf.where(match), tf.int32)
    banned = tf.stack([where[:, 0], tf.gather_nd(ngrams[:, :, -1], where)], axis=1)
    # The banned tokens are a handful per row and most steps have none, so the logits are
    # updated at those places only, and copied only on a step that bans something.
    return tf.cond(
        tf.size(banned) > 0,
        lambda: tf.tensor_scatter_nd_update(logits, banned, tf.fill([tf.shape(banned)[0]], NEG_INF)),
        lambda: logits,
    )
