"""Models: the tiny embedded base model, loading real local models, chat formatting, LoRA."""
