"""Evaluation: generation, diversity, quality, pass@k and statistics (DESIGN.md section 7)."""
