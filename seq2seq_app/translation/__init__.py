"""Many-to-many: Spanish-English translation with a bidirectional encoder and an attention decoder."""
