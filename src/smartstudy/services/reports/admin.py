"""The admin models page's report: the newest versions of each model family."""

from __future__ import annotations

from sqlalchemy.orm import Session

from smartstudy.store.orm import ModelVersion
from smartstudy.store.repositories import reports as queries


def recent_versions(
    session: Session, names: list[str], per_model: int = 12
) -> tuple[dict[str, list[ModelVersion]], dict[str, int]]:
    """The newest ``per_model`` versions of each model family (artifacts left unloaded: a
    page never needs them) and how many versions each family has.

    The families of ``names`` come first, in their order, then any other family with stored
    versions, by name."""
    counts = queries.version_counts(session)
    shown = {
        name: queries.newest_versions(session, name, per_model)
        for name in dict.fromkeys([*names, *sorted(counts)])
    }
    return shown, counts
