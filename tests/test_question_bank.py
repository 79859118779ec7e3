"""The question bank as CSV: export every question, import many at once (all or nothing)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from smartstudy.cli import app as cli_app
from smartstudy.services import catalogue, quiz
from smartstudy.services.importing import ImportErrors
from smartstudy.services.question_bank import (
    COLUMNS,
    export_questions_csv,
    import_questions_csv,
)
from smartstudy.store.db import session_scope
from smartstudy.store.orm import AuditEntry, Concept, Question, Subject, Topic

HEADER = "subject,topic,concept,question,answer_1,answer_2,answer_3,right,difficulty\n"
GOOD = (
    HEADER
    + "Chemistry,Organic,Alkanes,Which is an alkane?,Ethene,Ethane,Benzene,2,easy\n"
    + 'chemistry,organic,ALKANES,"Name CH4,\nplease",Methane,Ethane,,1,\n'
    + "Chemistry,Inorganic,Salts,NaCl is,a salt,an acid,,1,Hard\n"
)


def _counts(context) -> tuple[int, int, int, int]:
    with context.sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Subject, Topic, Concept, Question)
        )


def _export(context) -> str:
    with context.sessions() as session:
        return export_questions_csv(session)


def _import(context, text: str, **kwargs):
    with session_scope(context.sessions) as session:
        return import_questions_csv(session, None, io.StringIO(text), **kwargs)


def test_an_import_adds_questions_and_what_they_name(context):
    with session_scope(context.sessions) as session:
        catalogue.ensure_topic(session, "Chemistry", "Organic")  # exists: matched in any case
    checked = _import(context, GOOD, dry_run=True)
    assert (checked.rows, checked.added) == (3, 3)
    assert _counts(context) == (1, 1, 0, 0)  # a dry run writes nothing
    result = _import(context, GOOD)
    assert (result.rows, result.added, result.skipped) == (3, 3, 0)
    assert (result.subjects_created, result.topics_created, result.concepts_created) == (0, 1, 2)
    assert _counts(context) == (1, 2, 2, 3)
    with context.sessions() as session:
        by_prompt = {q.prompt: q for q in session.scalars(select(Question))}
        audit = session.scalars(select(AuditEntry)).all()
    assert by_prompt["Which is an alkane?"].options == ["Ethene", "Ethane", "Benzene"]
    assert by_prompt["Which is an alkane?"].correct_option == 1
    assert by_prompt["Name CH4,\nplease"].options == ["Methane", "Ethane"]
    assert by_prompt["Name CH4,\nplease"].difficulty == "medium"  # left out
    assert by_prompt["NaCl is"].difficulty == "hard"
    assert [(e.action, e.details["added"]) for e in audit] == [("question.import", 3)]
    # The same file again adds nothing: its questions are in the bank.
    again = _import(context, GOOD)
    assert (again.added, again.skipped) == (0, 3)
    assert _counts(context) == (1, 2, 2, 3)


def test_an_export_imports_into_an_empty_installation_as_it_was(context, tmp_path):
    _import(context, GOOD)
    exported = _export(context)
    rows = list(csv.reader(io.StringIO(exported)))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 4
    assert rows[1][:4] == ["Chemistry", "Inorganic", "Salts", "NaCl is"]
    with session_scope(context.sessions) as session:
        for question in session.scalars(select(Question)):
            quiz.delete_question(session, question.id)
    assert _import(context, exported).added == 3
    assert _export(context) == exported


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("Chemistry,Organic,Alkanes,,A,B,,1,", "line 3, column question: is empty"),
        (
            "Chemistry,Organic,Alkanes,Q,A,,,1,",
            "line 3, column answer_2: a question needs at least 2",
        ),
        ("Chemistry,Organic,Alkanes,Q,A,,C,1,", "line 3, column answer_3: answer_2 is empty"),
        ("Chemistry,Organic,Alkanes,Q,A,A,,1,", "two answers are the same"),
        (
            "Chemistry,Organic,Alkanes,Q,A,B,,3,",
            "line 3, column right: '3' is not the number of an answer (1 to 2)",
        ),
        ("Chemistry,Organic,Alkanes,Q,A,B,,x,", "column right: 'x' is not the number"),
        ("Chemistry,Organic,Alkanes,Q,A,B,,1,brutal", "column difficulty: 'brutal' is not one of"),
        (",Organic,Alkanes,Q,A,B,,1,", "line 3, column subject: must not be empty"),
        ("Chemistry,Organic,Alk\x00anes,Q,A,B,,1,", "line 3, column concept:"),
        (
            "Chemistry,Organic,Alkanes,Q," + "y" * 501 + ",B,,1,",
            "column answer_1: must be at most 500",
        ),
        ("Chemistry,Organic,Alkanes,Q,A,B,,1,,extra", "line 3: 10 cells, expected 9"),
    ],
)
def test_a_bad_row_refuses_the_whole_file(context, line, problem):
    good_row = "Chemistry,Organic,Alkanes,Fine question,A,B,,1,\n"
    with pytest.raises(ImportErrors) as refused:
        _import(context, HEADER + good_row + line + "\n")
    assert problem in str(refused.value), str(refused.value)
    assert _counts(context) == (0, 0, 0, 0)


def test_a_file_without_the_columns_is_refused(context):
    with pytest.raises(ImportErrors, match="missing column"):
        _import(context, "subject,topic,question\nA,B,C\n")
    with pytest.raises(ImportErrors, match="unknown column"):
        _import(context, HEADER.strip() + ",colour\nA,B,C,Q,a,b,,1,,red\n")
    with pytest.raises(ImportErrors, match="no rows"):
        _import(context, HEADER)


def test_the_command_line_imports_and_exports(context, monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTSTUDY_DATABASE_URL", context.settings.resolved_database_url)
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(context.settings.data_dir))
    runner = CliRunner()
    source = tmp_path / "bank.csv"
    source.write_text(GOOD, encoding="utf-8")
    checked = runner.invoke(cli_app, ["questions", "import", str(source), "--dry-run"])
    assert checked.exit_code == 0, checked.output
    assert "would add 3 questions" in checked.output and "nothing written" in checked.output
    assert _counts(context) == (0, 0, 0, 0)
    done = runner.invoke(cli_app, ["questions", "import", str(source)])
    assert done.exit_code == 0 and "added 3 questions, skipped 0" in done.output, done.output
    out = tmp_path / "export.csv"
    exported = runner.invoke(cli_app, ["questions", "export", "--out", str(out)])
    assert exported.exit_code == 0 and "3 questions" in exported.output, exported.output
    assert out.read_text(encoding="utf-8") == _export(context)
    printed = runner.invoke(cli_app, ["questions", "export"])
    assert printed.output == out.read_text(encoding="utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_text(HEADER + "Chemistry,Organic,Alkanes,Q,A,B,,9,\n", encoding="utf-8")
    refused = runner.invoke(cli_app, ["questions", "import", str(broken)])
    assert refused.exit_code == 1 and "import refused, nothing was written" in refused.output
    assert "line 2, column right" in refused.output
