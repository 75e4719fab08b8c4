"""seq2seq_app: recurrent encoder–decoder models for translation, captioning and sentiment."""

from seq2seq_app.captioning.captioner_api import LoadedCaptioner, load_captioner
from seq2seq_app.sentiment.sentiment_api import LoadedSentimentClassifier, load_sentiment_classifier
from seq2seq_app.translation.translator_api import LoadedTranslator, load_translator

__all__ = [
    "LoadedCaptioner",
    "LoadedSentimentClassifier",
    "LoadedTranslator",
    "load_captioner",
    "load_sentiment_classifier",
    "load_translator",
]
