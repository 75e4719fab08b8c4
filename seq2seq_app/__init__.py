"""seq2seq_app: recurrent encoder–decoder models for translation, captioning and sentiment."""

from seq2seq_app.translator_api import LoadedTranslator, load_translator

__all__ = ["LoadedTranslator", "load_translator"]
