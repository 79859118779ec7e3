"""Interactions schema, data set loaders, CSV import and simulators."""

from smartstudy.data.loaders import (
    DATASETS,
    DatasetNotFoundError,
    datasets_dir,
    load_dataset,
)
from smartstudy.data.schema import (
    INTERACTION_COLUMNS,
    InteractionsError,
    InteractionsWarning,
    sort_for_sequences,
    validate_interactions,
)

__all__ = [
    "DATASETS",
    "INTERACTION_COLUMNS",
    "DatasetNotFoundError",
    "InteractionsError",
    "InteractionsWarning",
    "datasets_dir",
    "load_dataset",
    "sort_for_sequences",
    "validate_interactions",
]
