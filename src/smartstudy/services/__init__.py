"""Use cases: accounts, catalogue, predictions, practice tasks, import, demo data."""
