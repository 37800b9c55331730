"""Fine-tuning helpers: training rows as chat messages, LoRA training, merge, GGUF/Ollama export.

The stages in :mod:`synthrun.stages` (combine, split, train, finetune_eval, merge, export_gguf) are thin
wrappers around these modules. torch, transformers, peft and trl are imported inside functions only.
"""
