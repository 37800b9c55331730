"""The shared LLM client: one place for concurrency, retries, caching and JSON parsing."""
