"""Training: the LoRA fine-tuning loop and the objectives it optimises (polychromic.objectives)."""
