"""Runs a script in a fresh interpreter that can import `tensorflow` but not our code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_BLOCKER = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("seq2seq_app", "tensorflow_text", "keras_hub", "keras_nlp"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import tensorflow as tf
"""


def run_with_tensorflow_alone(script: str, saved_model: Path | list[Path], tmp_path: Path) -> str:
    """Runs `script` (with `tf` imported and the SavedModel path, or paths, in `sys.argv[1:]`);
    returns stdout. One interpreter for several SavedModels: each start imports TensorFlow anew."""
    paths = saved_model if isinstance(saved_model, list) else [saved_model]
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER + script, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
