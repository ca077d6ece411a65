"""Data stage: demo corpus, validation, collection report, curation, leak-free splits."""
