"""Starts the demo in this process on a free port, with the same launch settings as `python -m ui`."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path


@functools.cache
def _models(models_dir: Path) -> dict:
    """The folder's models, loaded once per test process: two UI modules serve the shipped
    models, and loading them is seconds of the suite each time."""
    from ui.catalog import load_models

    return load_models(models_dir)


@contextlib.contextmanager
def running_app(models_dir: Path) -> Iterator[str]:
    """Yields the app's URL; closes the server afterwards."""
    from ui.app import build_demo, serve
    from ui.load import free_port

    demo = build_demo(_models(Path(models_dir).resolve()))
    _, url, _ = serve(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()
