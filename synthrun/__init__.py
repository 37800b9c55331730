"""synthrun: declarative recipes that turn documents and API specs into curated fine-tuning data."""

__version__ = "0.1.0"
