"""Deterministic train/validation/test splits that keep related examples together."""

from __future__ import annotations

import collections
import random
from collections.abc import Sequence


def grouped_split(
    keys: Sequence[str], validation: float, test: float, seed: int = 0
) -> tuple[list[int], list[int], list[int]]:
    """Indices of the training, validation and test examples; equal keys share a split.

    Grouping by key keeps held-out splits honest: a sentence translated twice, a review posted
    twice or an image with five captions is never both trained on and tested on.

    Args:
        keys: one key per example.
        validation: fraction of the distinct keys held out for validation.
        test: fraction of the distinct keys held out for testing.
        seed: the shuffle's seed; the same keys and seed always give the same split.

    Example:
    >>> grouped_split(["a", "b", "a", "c"], 0.0, 0.34, seed=1)
    ([0, 2, 3], [], [1])
    """
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise ValueError(
            f"validation ({validation}) and test ({test}) fractions must be in [0, 1) and sum to less than 1"
        )
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    ordered = sorted(groups)
    random.Random(seed).shuffle(ordered)
    n_val, n_test = int(len(ordered) * validation), int(len(ordered) * test)
    parts = (ordered[n_val + n_test :], ordered[:n_val], ordered[n_val : n_val + n_test])
    return tuple(sorted(i for k in part for i in groups[k]) for part in parts)  # type: ignore[return-value]
