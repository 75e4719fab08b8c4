"""One-to-many: image captioning, a CNN encoder feeding an attention LSTM decoder."""
