"""`python -m ui [--host 127.0.0.1] [--port 7860] [--models-dir saved_models] [--share]`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui", description="The seq2seq_app Gradio demo.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--models-dir", default="saved_models")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    args = parser.parse_args(argv)

    from ui.app import build_demo, load_models

    demo = build_demo(load_models(args.models_dir))
    demo.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, max_file_size="10mb"
    )


if __name__ == "__main__":
    main()
