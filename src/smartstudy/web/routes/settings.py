"""Settings: profile, password, export of one's own tasks, and account deletion."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartstudy.services import analytics, profile
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.services.security import verify_password
from smartstudy.store.orm import User
from smartstudy.web import forms, sessions
from smartstudy.web.deps import DB, Form, PageRoute, PageUser, secret_of
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_MESSAGES = {
    ("current_password", "is wrong"): "Your current password is wrong.",
}


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
    }
    shown.update(values or {})
    return render(
        request,
        "settings.html",
        {
            "active": "settings",
            "values": shown,
            "errors": errors or {},
            "owned": analytics.count_owned(db, user.id),
        },
        status_code=status,
    )


@router.get("/settings")
def settings(request: Request, db: DB, user: PageUser) -> Response:
    return _settings_page(request, db, user)


@router.post("/settings/profile")
def save_profile(request: Request, db: DB, user: PageUser, form: Form) -> Response:
    values = {
        "display_name": forms.text(form, "display_name", 200),
        "email": forms.text(form, "email", 320),
    }
    errors: dict[str, str] = {}
    if not values["display_name"].strip():
        errors["display_name"] = "Enter the name to show (it may be your first name)."
    try:
        address = forms.email(values["email"])
    except forms.FieldError as exc:
        errors["email"] = str(exc)
    if not errors:
        try:
            profile.update_profile(db, user, values["display_name"], address)
            db.commit()
        except ConflictError:
            db.rollback()
            errors["email"] = "Another account already uses this e-mail."
        except InvalidInputError as exc:
            db.rollback()
            errors[exc.field] = exc.message[:1].upper() + exc.message[1:] + "."
        else:
            return redirect("/settings", notice="profile")
    db.refresh(user)
    return _settings_page(request, db, user, values=values, errors=errors, status=422)


@router.post("/settings/password")
def change_password(request: Request, db: DB, user: PageUser, form: Form) -> Response:
    current = forms.text(form, "current_password", 256)
    new = forms.text(form, "new_password", 256)
    confirm = forms.text(form, "new_password_confirm", 256)
    errors: dict[str, str] = {}
    if not current:
        errors["current_password"] = "Enter your current password."
    if not new:
        errors["new_password"] = "Choose a new password."
    elif new != confirm:
        errors["new_password_confirm"] = "The two new passwords are not the same."
    if not errors:
        try:
            profile.change_password(db, user, current, new)
            db.commit()
        except InvalidInputError as exc:
            db.rollback()
            field = "new_password" if exc.field == "password" else exc.field
            errors[field] = _MESSAGES.get(
                (exc.field, exc.message), exc.message[:1].upper() + exc.message[1:] + "."
            )
        else:
            # This browser stays signed in with the new fingerprint; every other session ends.
            response = redirect("/settings", notice="password")
            ws = sessions.signed_in(secret_of(request), user)
            sessions.set_cookie(response, request, ws, secret_of(request))
            return response
    db.refresh(user)
    return _settings_page(request, db, user, errors=errors, status=422)


@router.get("/settings/export.csv")
def export(db: DB, user: PageUser) -> Response:
    body = analytics.export_tasks_csv(db, user.id)
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
def delete_account(request: Request, db: DB, user: PageUser, form: Form) -> Response:
    values = {"confirm_email": forms.text(form, "confirm_email", 320)}
    password = forms.text(form, "password", 256)
    errors: dict[str, str] = {}
    if values["confirm_email"].strip().lower() != user.email:
        errors["confirm_email"] = "Type your e-mail address exactly to confirm the deletion."
    if not password:
        errors["delete_password"] = "Enter your password to confirm."
    elif not verify_password(user.password_hash, password):
        errors["delete_password"] = "Your password is wrong; nothing was deleted."
    if not errors:
        try:
            profile.delete_account(db, user)
            db.commit()
        except ConflictError as exc:
            db.rollback()
            errors["form"] = str(exc)[:1].upper() + str(exc)[1:] + "."
        else:
            request.state.user = None
            response = redirect("/login", notice="deleted")
            sessions.clear_cookie(response, request)
            return response
    return _settings_page(request, db, user, values=values, errors=errors, status=422)
