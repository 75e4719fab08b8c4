"""The process environment a training entry point sets once, in its `main`, before any TensorFlow op
runs (importing a module never changes it)."""

from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    """Hides TensorFlow's C++ info and warning lines (unless TF_CPP_MIN_LOG_LEVEL is already set).

    Read by TensorFlow when its runtime starts: set in `main`, it silences all but the line or two
    TensorFlow prints while being imported; the cluster launcher sets it for its workers up front.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
