"""`python -m ui [--host 127.0.0.1] [--port 7860] [--models-dir DIR] [--share] [--verbose]`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence


def default_models_dir() -> str:
    """./saved_models when there is one, else the models shipped beside this package (a checkout's)."""
    here = "saved_models"
    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
    return here if os.path.isdir(here) or not os.path.isdir(shipped) else shipped


def quiet_environment() -> None:
    """Silences TensorFlow's C++ logging; must run before TensorFlow is first imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@contextlib.contextmanager
def native_stderr_held(hold: bool) -> Iterator[None]:
    """Holds back what is written to file descriptor 2 (by C++ as well as Python) while TensorFlow
    starts, and replays it only if start-up fails.

    TensorFlow's CUDA probe prints "Could not find cuda drivers" before its logging is set up, so
    no environment variable silences it; on a CPU machine none of it is news.
    """
    if not hold:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui", description="The seq2seq_app Gradio demo.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--models-dir",
        default=None,
        help="folder holding the SavedModel folders (default: ./saved_models, else the shipped ones)",
    )
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's and Gradio's own logs")
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_environment()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s: %(message)s"
    )
    models_dir = args.models_dir or default_models_dir()
    if not os.path.isdir(models_dir):
        print(f"note: no folder {models_dir!r}; every tab will say how to train its model")
    began = time.perf_counter()
    with native_stderr_held(not args.verbose):
        from ui.app import build_demo, serve
        from ui.catalog import load_models

        models = load_models(models_dir)
        demo = build_demo(models)
    _, url, share_url = serve(demo, args.host, args.port, args.share, prevent_thread_lock=True, quiet=True)
    loaded = ", ".join(m.path.name for m in models.values() if m is not None) or "none"
    print(
        f"seq2seq_app on {share_url or url} · models from {os.path.abspath(models_dir)}: {loaded} "
        f"· ready in {time.perf_counter() - began:.1f} s (Ctrl-C stops)",
        flush=True,
    )
    # Every signature is traced once in the background, so the page is up without waiting for it
    # and a request that comes first waits only for the signature it calls.
    threading.Thread(target=_warm_up, args=(models,), name="warm-up", daemon=True).start()
    demo.block_thread()


def _warm_up(models: dict) -> None:
    from ui.handlers import warm_up

    began = time.perf_counter()
    try:
        warm_up(models)
    except Exception:  # the app still serves; the first request of that kind traces it instead
        logging.getLogger("ui").exception("warming up the models failed")
        return
    logging.getLogger("ui").info("every model warmed up in %.1f s", time.perf_counter() - began)


if __name__ == "__main__":
    main()
