"""Training pairs copied with their names swapped for other names of the corpus.

A translator trained on Tatoeba sees "Tom" eighteen thousand times and most other names once or
never: it learns to write Tom, not to carry a name across, and turns the names of news sentences
into look-alike pieces ("Pedro Sánchez" → "Pedrof Sigzz"). Copies of the pairs that hold a name,
each name replaced on both sides by a name drawn evenly from every name the corpus holds, show it
thousands of names in the contexts where names occur (entity replacement as data augmentation; no
maintained library does it for a tokenised Keras pipeline, so it is written here).

A name is found without a tagger: a target word that looks like one (`text.looks_like_name`:
capitalised, letters only, 3+ characters), that the (lowercased) source holds too, and that never
occurs as a lowercase word on the target side (which leaves out "Street" of "Wall Street" and
"The" of a title).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from seq2seq_app.core.text import looks_like_name
from seq2seq_app.translation.data_source import oversampled, words_key


def pair_names(source_tokens: Sequence[str], target_tokens: Sequence[str], common: set[str]) -> list[str]:
    """The names a pair carries from source to target, in target order, each once.

    Args:
        source_tokens: the source words, lowercased as the training sources are.
        target_tokens: the target words, cased.
        common: the lowercase words of the target side, which are not names however they are cased.

    Example:
    >>> source, target = ["tom", "vive", "en", "wall", "street"], ["Tom", "lives", "on", "Wall", "Street"]
    >>> pair_names(source, target, {"street"})
    ['Tom', 'Wall']
    """
    source = set(source_tokens)
    names: list[str] = []
    for word in target_tokens:
        if (
            looks_like_name(word)
            and word.lower() in source
            and word.lower() not in common
            and word not in names
        ):
            names.append(word)
    return names


def swap_names(
    source_tokens: Sequence[Sequence[str]],
    target_tokens: Sequence[Sequence[str]],
    weight: float,
    seed: int = 0,
    held_out: Collection[str] = (),
) -> tuple[list[list[str]], list[list[str]]]:
    """Copies of the pairs that carry names, every name replaced by another of the corpus's names.

    Args:
        source_tokens: tokenised source sentences, lowercased.
        target_tokens: the aligned tokenised target sentences, cased.
        weight: copies per pair that carries a name, as a source weight: 1 copies each once, 0.5 a
            seeded half of them, 2 each twice (with other names each time).
        seed: for the choice of pairs and of names.
        held_out: validation and test source sentences: a copy that would be one of them ("Tom
            left." swapped into a held-out "Mary left.") is not made.

    Returns:
        (source copies, target copies), aligned; empty when the corpus holds fewer than two names.

    Example:
    >>> src, tgt = swap_names([["tom", "duerme"], ["ana", "come"]], [["Tom", "sleeps"], ["Ana", "eats"]], 1)
    >>> tgt
    [['Ana', 'sleeps'], ['Tom', 'eats']]
    """
    common = {word for tokens in target_tokens for word in tokens if word.islower()}
    found = [
        (i, names)
        for i, (s, t) in enumerate(zip(source_tokens, target_tokens))
        if (names := pair_names(s, t, common))
    ]
    pool = sorted({name for _, names in found for name in names})
    if len(pool) < 2:
        return [], []
    held = {words_key(sentence) for sentence in held_out}
    rng = random.Random(seed)
    new_sources, new_targets = [], []
    for k in oversampled(len(found), weight, seed):
        i, names = found[k]
        swap = {}
        for name in names:
            other = name
            while other == name:
                other = rng.choice(pool)
            swap[name] = other
        lowered = {name.lower(): other.lower() for name, other in swap.items()}
        source = [lowered.get(word, word) for word in source_tokens[i]]
        if words_key(" ".join(source)) not in held:
            new_sources.append(source)
            new_targets.append([swap.get(word, word) for word in target_tokens[i]])
    return new_sources, new_targets
