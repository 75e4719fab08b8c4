"""Synthetic sequence tasks that need memory, generated from a seed."""

from __future__ import annotations

import numpy as np


def delayed_recall(
    rng: np.random.Generator, batch: int, length: int, lags: list[int], symbols: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Random one-hot symbols; targets are the symbols seen `lag` steps before the last step.

    Every step shows a symbol, so the network must keep the right one while others stream
    past; chance accuracy is 1 / `symbols`.

    Args:
        rng: random generator.
        batch: sequences.
        length: steps per sequence (more than the largest lag).
        lags: distances to recall; lag 0 is the last step's own symbol.
        symbols: alphabet size.

    Returns:
        x: float32 [batch, length, symbols]; y: int32 [batch, len(lags)].

    Example:
    >>> x, y = delayed_recall(np.random.default_rng(0), 2, 5, [0, 4])
    >>> x.shape, y.shape, bool((x[:, 0].argmax(-1) == y[:, 1]).all())
    ((2, 5, 4), (2, 2), True)
    """
    if not lags or min(lags) < 0 or max(lags) >= length:
        raise ValueError(f"lags must lie in 0..{length - 1}, got {lags}")
    ids = rng.integers(0, symbols, (batch, length))
    x = np.eye(symbols, dtype="float32")[ids]
    y = np.stack([ids[:, length - 1 - lag] for lag in lags], axis=1).astype("int32")
    return x, y
