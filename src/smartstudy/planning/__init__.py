"""What to practise next and how to prepare for an exam, from the models' predictions.

Pure functions over plain data (:mod:`smartstudy.planning.core`): the service layer gathers a
student's predictions and history, this package turns them into recommendations and a
day-by-day plan. Nothing here touches the database, so the planner can also be run in
simulations (:mod:`smartstudy.eval.planner_sim`).
"""

from smartstudy.planning.core import (
    DIFFICULTIES,
    CellForecast,
    ExamSpec,
    Plan,
    PlanDay,
    PlannedTask,
    Readiness,
    Recommendation,
    RecommendationSettings,
    TopicState,
    WorkloadPoint,
    build_plan,
    recommend,
)

__all__ = [
    "DIFFICULTIES",
    "CellForecast",
    "ExamSpec",
    "Plan",
    "PlanDay",
    "PlannedTask",
    "Readiness",
    "Recommendation",
    "RecommendationSettings",
    "TopicState",
    "WorkloadPoint",
    "build_plan",
    "recommend",
]
