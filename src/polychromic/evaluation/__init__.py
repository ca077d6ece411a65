"""Evaluation: generation, diversity, quality, pass@k and statistics."""
