"""Read-side reports of a student's own pages and the admin page, one module per report.

- ``calendar``: the user's time zone and where their day begins.
- ``dashboard``: today's tasks, the week's study time, the daily trend, mastery highlights.
- ``history``: the filtered, sorted task history and the CSV export of every task.
- ``prediction_quality``: accuracy and time by topic and difficulty, calibration, ECE,
  interval coverage and progress by week (metrics from ``smartstudy.eval.metrics``).
- ``mastery``: subjects, concepts and the user's mastery, a concept's detail, quizzes and the
  mastery a quiz moved (BKT parameters from ``services.mastery``).
- ``admin``: the newest model versions of each family.
- ``account``: how many rows of each kind a user owns (what account deletion removes).

Every report takes the id of the user whose data it reads and never returns anyone else's
rows; who may ask for whose data stays with the caller. The SQL lives in
``store.repositories.reports``.
"""
