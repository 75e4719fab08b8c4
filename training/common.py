"""The names training scripts imported from here before the split by concern, kept for scripts
that still use them (training/bench.py, training/compare_units.py).

New code imports from the modules themselves: flags.py (command line), strategy.py (devices,
precision, cluster), run_state.py, callbacks.py, cards.py, export.py and task.py (the skeleton).
"""

from training.callbacks import StopFile, TrainingClock, best_weights_path, fit_callbacks
from training.cards import command_line, training_card, write_model_card
from training.export import directory_megabytes, export_with_card, float32_copy, safe_export
from training.flags import (
    add_common_flags,
    add_decoder_flags,
    add_recurrent_flags,
    parse_with_config,
    positive_int,
)
from training.run_state import RunState, check_same_run
from training.strategy import Worker, configure_precision, machine_description, make_strategy
from training.task import carve_splits, fit_or_load, require_nonempty, start_run

__all__ = [
    "RunState",
    "StopFile",
    "TrainingClock",
    "Worker",
    "add_common_flags",
    "add_decoder_flags",
    "add_recurrent_flags",
    "best_weights_path",
    "carve_splits",
    "check_same_run",
    "command_line",
    "configure_precision",
    "directory_megabytes",
    "export_with_card",
    "fit_callbacks",
    "fit_or_load",
    "float32_copy",
    "machine_description",
    "make_strategy",
    "parse_with_config",
    "positive_int",
    "require_nonempty",
    "safe_export",
    "start_run",
    "training_card",
    "write_model_card",
]
