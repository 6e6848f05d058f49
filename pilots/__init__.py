"""Domain code of the pilots: data, training, evaluation, prediction, explanation (no transport)."""
