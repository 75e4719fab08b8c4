"""TFDS builder for the Naver Sentiment Movie Corpus (NSMC v1.0, Korean movie reviews)."""

from __future__ import annotations

import tensorflow_datasets as tfds

from seq2seq_app.sentiment.data import read_labeled_tsv

_URL = "https://raw.githubusercontent.com/e9t/nsmc/master/"
_FILES = {"train": "ratings_train.txt", "test": "ratings_test.txt"}


class Nsmc(tfds.core.GeneratorBasedBuilder):
    """NSMC: 150,000 training and 50,000 test reviews, labelled 1 (positive) or 0 (negative).

    With internet it downloads the public files from github.com/e9t/nsmc. Offline, it reads
    them from a manual folder; the splits whose files are there are built (e.g. only `train`).
    Empty or malformed rows are skipped (see `read_labeled_tsv`).

    Example:
    >>> builder = Nsmc(data_dir="/tmp/tfds")  # doctest: +SKIP
    >>> builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
    ...     manual_dir="../shared/data/nsmc"))  # doctest: +SKIP
    >>> builder.as_dataset(split="train")  # doctest: +SKIP
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "NSMC v1.0 (e9t/nsmc)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional, for offline builds: put ratings_train.txt (and ratings_test.txt) from "
        "https://github.com/e9t/nsmc in the manual folder."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "document": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                }
            ),
            supervised_keys=("document", "label"),
            homepage="https://github.com/e9t/nsmc",
            license="CC0 1.0",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        try:
            manual = dl_manager.manual_dir
        except AssertionError:  # no manual folder: download the public files
            paths = dl_manager.download({split: _URL + name for split, name in _FILES.items()})
        else:
            paths = {split: manual / name for split, name in _FILES.items() if (manual / name).exists()}
            if not paths:
                raise FileNotFoundError(f"{manual} holds none of {sorted(_FILES.values())}")
        return {split: self._generate_examples(path) for split, path in paths.items()}

    def _generate_examples(self, path):
        reviews = read_labeled_tsv(path, "document", "label")
        for i, (text, label) in enumerate(zip(reviews.texts, reviews.labels)):
            yield i, {"document": text, "label": label}
