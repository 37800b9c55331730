"""DEITA-style scoring of examples: complexity, quality and embedding diversity."""
