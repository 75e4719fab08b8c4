"""The shared core of the three tasks: text, vocabularies, images, layers, decoding, metrics, loading."""
