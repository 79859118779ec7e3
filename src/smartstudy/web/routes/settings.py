"""Settings: profile, password, export of one's own tasks, and account deletion."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartstudy.services import accounts, localtime, profile, rules
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.services.reports import account as account_report
from smartstudy.services.reports import history as history_report
from smartstudy.store.orm import User
from smartstudy.web import forms
from smartstudy.web.deps import (
    DB,
    Form,
    PageRoute,
    PageUser,
    UoW,
    as_sentence,
    client_address,
    sign_in,
    sign_out,
)
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_MESSAGES = {
    ("current_password", "is wrong"): "Your current password is wrong.",
}
#: The moment each locale's example is written for in the locale select.
_EXAMPLE_MOMENT = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _locale_choices() -> list[tuple[str, str, str]]:
    """(tag, name, example) for each supported locale, e.g. ("de-DE", "Deutsch
    (Deutschland)", "29.11.2026, 08:00")."""
    return [
        (tag, localtime.locale_label(tag), localtime.format_datetime(_EXAMPLE_MOMENT, "UTC", tag))
        for tag in localtime.SUPPORTED_LOCALES
    ]


def _settings_page(
    request: Request,
    db: DB,
    user: User,
    *,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> Response:
    shown = {
        "display_name": user.display_name,
        "email": user.email,
        "confirm_email": "",
        "time_zone": user.time_zone,
        "locale": user.locale,
    }
    shown.update(values or {})
    return render(
        request,
        "settings.html",
        {
            "active": "settings",
            "values": shown,
            "errors": errors or {},
            "owned": account_report.count_owned(db, user.id),
            "time_zones": localtime.time_zone_names(),
            "locales": _locale_choices(),
        },
        status_code=status,
    )


@router.get("/settings")
def settings(request: Request, db: DB, user: PageUser) -> Response:
    return _settings_page(request, db, user)


@router.post("/settings/profile")
def save_profile(request: Request, uow: UoW, db: DB, user: PageUser, form: Form) -> Response:
    values = {
        "display_name": forms.typed(form, "display_name"),
        "email": forms.text(form, "email", rules.MAX_EMAIL),
        # A form without these (an older page) keeps the stored ones.
        "time_zone": forms.text(form, "time_zone", 100) or user.time_zone,
        "locale": forms.text(form, "locale", 100) or user.locale,
    }
    errors: dict[str, str] = {}
    if not values["display_name"].strip():
        errors["display_name"] = "Enter the name to show (it may be your first name)."
    try:
        address = forms.email(values["email"])
    except forms.FieldError as exc:
        errors["email"] = str(exc)
    try:
        localtime.check_time_zone(values["time_zone"])
    except InvalidInputError:
        errors["time_zone"] = (
            f"“{values['time_zone']}” is not a time zone we know. Choose one from the list."
        )
        values["time_zone"] = user.time_zone  # the select shows the stored one again
    try:
        localtime.check_locale(values["locale"])
    except InvalidInputError:
        errors["locale"] = "Choose one of the date formats in the list."
        values["locale"] = user.locale
    if not errors:
        try:
            profile.update_profile(db, user, values["display_name"], address)
            accounts.set_time_zone_and_locale(db, user, values["time_zone"], values["locale"])
        except ConflictError:
            uow.rollback()
            errors["email"] = "Another account already uses this e-mail."
        except InvalidInputError as exc:
            uow.rollback()
            errors[exc.field] = as_sentence(exc.message)
        else:
            return redirect("/settings", notice="profile")
    db.refresh(user)
    return _settings_page(request, db, user, values=values, errors=errors, status=422)


@router.post("/settings/password")
def change_password(request: Request, uow: UoW, db: DB, user: PageUser, form: Form) -> Response:
    current = forms.text(form, "current_password", rules.MAX_PASSWORD)
    new = forms.text(form, "new_password", rules.MAX_PASSWORD)
    confirm = forms.text(form, "new_password_confirm", rules.MAX_PASSWORD)
    errors: dict[str, str] = {}
    if not current:
        errors["current_password"] = "Enter your current password."
    if not new:
        errors["new_password"] = "Choose a new password."
    elif new != confirm:
        errors["new_password_confirm"] = "The two new passwords are not the same."
    if not errors:
        try:
            accounts.change_password(db, user, current, new, client_address(request))
        except InvalidInputError as exc:
            uow.rollback()
            errors[exc.field] = _MESSAGES.get((exc.field, exc.message), as_sentence(exc.message))
        else:
            # Every session of the user ended, this one too (a copy of its cookie must not
            # live on); this browser goes on in a new one.
            response = redirect("/settings", notice="password")
            sign_in(request, db, user, response)
            return response
    db.refresh(user)
    return _settings_page(request, db, user, errors=errors, status=422)


@router.get("/settings/export.csv")
def export(db: DB, user: PageUser) -> Response:
    body = history_report.export_tasks_csv(db, user.id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="smartstudy-tasks.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/settings/delete")
def delete_account(request: Request, uow: UoW, db: DB, user: PageUser, form: Form) -> Response:
    values = {"confirm_email": forms.text(form, "confirm_email", rules.MAX_EMAIL)}
    password = forms.text(form, "password", rules.MAX_PASSWORD)
    errors: dict[str, str] = {}
    if values["confirm_email"].strip().lower() != user.email:
        errors["confirm_email"] = "Type your e-mail address exactly to confirm the deletion."
    if not password:
        errors["delete_password"] = "Enter your password to confirm."
    else:
        try:
            accounts.check_current_password(db, user, password, client_address(request))
        except InvalidInputError:
            errors["delete_password"] = "Your password is wrong; nothing was deleted."
    if not errors:
        try:
            profile.delete_account(db, user)
        except ConflictError as exc:
            uow.rollback()
            errors["form"] = as_sentence(str(exc))
        else:
            response = redirect("/login", notice="deleted")
            sign_out(request, db, response)
            return response
    return _settings_page(request, db, user, values=values, errors=errors, status=422)
