"""rent: the model's data, features and training entry point (see README.md)."""
