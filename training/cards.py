"""Model cards: `model_card.json` (for programs and the UI) and `README.md` (for people), and the
`training` section every card shares (how to reproduce the run, and what it cost).

Apart from export.py because a card is about the run, not the SavedModel: the UI's catalog and the
README test their training commands against `training.command`.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from training import flags
from training.run_state import RunState
from training.strategy import machine_description


def card_args(card: dict, parser: argparse.ArgumentParser, module: str) -> argparse.Namespace:
    """The flags a model card's `python -m MODULE …` training command ran with (a --config file
    read as the CLI does)."""
    words = shlex.split(card.get("training", {}).get("command", ""))
    if module not in words:
        raise ValueError(f"the model card's training command is not a `python -m {module}` command")
    return flags.parse_with_config(parser, words[words.index(module) + 1 :])


def command_line() -> str:
    """The command that started this process, as `python -m MODULE ARGS` (shell-quoted)."""
    return shlex.join(["python", "-m", _module_name(), *sys.argv[1:]])


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec and spec.name:  # `python -m package` runs `package.__main__`
        return spec.name.removesuffix(".__main__")
    return Path(sys.argv[0]).stem


def write_model_card(export_dir: Path, card: dict) -> None:
    """Writes `model_card.json` and a `README.md` rendering of it into `export_dir`."""
    (export_dir / "model_card.json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    lines = [f"# {card['title']}", "", card.get("description", ""), ""]
    for section in ("data", "backbone", "metrics", "training", "hyperparameters", "export"):
        if section not in card:
            continue
        lines += [f"## {section.capitalize()}", ""]
        value = card[section]
        if isinstance(value, dict):
            lines += [f"- **{k}**: {v}" for k, v in value.items()]
        else:
            lines.append(str(value))
        lines.append("")
    (export_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")


def training_card(args: argparse.Namespace, state: RunState, policy: str) -> dict:
    """The model card's `training` section: how to reproduce the run and what it cost."""
    return {
        "command": command_line(),
        "train_seconds": round(state["train_seconds"] or 0.0),
        "epochs": state["epochs_done"],
        "precision_policy": policy,
        "strategy": args.strategy,
        "machine": machine_description(),
        "final_val_loss": (state["history"] or [{}])[-1].get("val_loss"),
        # The exported weights are the best epoch's, or the mean in `averaging` when it was used.
        "best_val_loss": min(_finite_val_losses(state["history"] or []), default=None),
        **({"averaging": state["averaging"]} if state["averaging"] else {}),
    }


def _finite_val_losses(history: list[dict]) -> list[float]:
    return [
        h["val_loss"]
        for h in history
        if isinstance(h.get("val_loss"), int | float) and math.isfinite(h["val_loss"])
    ]
