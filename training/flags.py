"""Command-line flags every training CLI shares, and `--config FILE` defaults.

Kept apart from the TensorFlow code so that parsing (and `--help`, and the cluster launcher)
never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses flags, taking defaults from `--config FILE` (JSON) when given; flags win.

    The config's keys are flag names with underscores (`{"units": 320, "cell": "gru"}`).
    Unknown keys are an error, so a typo cannot silently fall back to a default.
    """
    parser.add_argument("--config", help="JSON file of flag values (flags given on the command line win)")
    first, _ = parser.parse_known_args(argv)
    if first.config:
        try:
            config = json.loads(Path(first.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            parser.error(f"cannot read --config {first.config}: {e}")
        known = {a.dest for a in parser._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            parser.error(f"unknown keys in {first.config}: {', '.join(unknown)}")
        for action in parser._actions:
            if action.dest in config and action.choices and config[action.dest] not in action.choices:
                parser.error(
                    f"{first.config}: {action.dest} must be one of {list(action.choices)}, "
                    f"not {config[action.dest]!r}"
                )
        parser.set_defaults(**config)
    return parser.parse_args(argv)


def add_common_flags(parser: argparse.ArgumentParser, run_dir: str, export_dir: str) -> None:
    """Flags every training CLI has, with the same names and meanings."""
    g = parser.add_argument_group("training")
    g.add_argument("--run-dir", default=run_dir, help="checkpoints, logs and vocabularies (resume from here)")
    g.add_argument("--export-dir", default=export_dir, help="where the SavedModel and model card go")
    g.add_argument("--epochs", type=positive_int, default=30)
    g.add_argument("--learning-rate", type=float, default=1e-3)
    g.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        help="steps between resumable backups (a killed run loses at most this many)",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--validation-fraction", type=float, default=0.03)
    g.add_argument("--test-fraction", type=float, default=0.03)
    g.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multi_worker"],
        default="default",
        help="tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG",
    )
    g.add_argument(
        "--mixed-precision",
        choices=["auto", "on", "off"],
        default="auto",
        help="on: float16 on GPU, bfloat16 on CPU; auto: on where the hardware has fast "
        "low-precision matmuls (GPU, or a CPU with AVX512-BF16/AMX)",
    )
    g.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="Keras progress bar mode")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_recurrent_flags(group, cell: str, embedding_dim: int, units: int, dropout: float) -> None:
    """The recurrent-model flags every CLI shares (each task with its own defaults)."""
    cells = [cell] + [c for c in ("gru", "lstm", "simple_rnn") if c != cell]
    group.add_argument("--cell", choices=cells, default=cell)
    group.add_argument("--embedding-dim", type=positive_int, default=embedding_dim)
    group.add_argument("--units", type=positive_int, default=units)
    group.add_argument("--dropout", type=float, default=dropout)


def add_decoder_flags(group) -> None:
    """Flags of the attention decoder (translation and captioning)."""
    group.add_argument("--decoder-layers", type=positive_int, default=1)
    group.add_argument("--attention", choices=["additive", "multiplicative"], default="additive")
