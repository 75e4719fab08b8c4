"""Grappler off for the tests, in-process and in the training commands they start.

Grappler, TensorFlow's graph optimizer, rewrites each graph on its first call. The tests check
behaviour, which the rewrites must not change, and on the tests' tiny models the rewriting cost
more than the calls: 2.5 to 3 times an exported translator's first call, with later calls no
faster. The checks that a SavedModel runs with TensorFlow alone (`plain_tf`) and the README's
snippets keep TensorFlow's defaults, as a user has them.

`python -m tests.fast_tf MODULE ARGS…` runs `python -m MODULE ARGS…` with Grappler off.
"""

from __future__ import annotations

import runpy
import sys


def grappler_off() -> None:
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def command(module: str) -> list[str]:
    """The interpreter arguments that run `module` as `python -m module` would, Grappler off."""
    return ["-m", "tests.fast_tf", module]


if __name__ == "__main__":
    grappler_off()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
