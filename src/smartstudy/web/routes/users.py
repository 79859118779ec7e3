"""The admin users pages: every account, searchable by e-mail or name; and one account's page,
where an admin sets a new password for a student who forgot theirs (there is no e-mail
reset), locks the account out or lets it back in, and changes its role. Every change goes
through ``services.user_admin`` (the API's ``/v1/users``) and is in the audit log."""

from __future__ import annotations

import math
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartstudy.services import rules, user_admin
from smartstudy.services.accounts import get_user
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.services.security import random_password
from smartstudy.web import forms
from smartstudy.web.deps import DB, AdminUser, Form, PageRoute, UoW, as_sentence, parse_id
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

USERS_PER_PAGE = 50


@router.get("/admin/users")
def users_page(request: Request, db: DB, _admin: AdminUser) -> Response:
    """Accounts by e-mail, 50 a page; ``q`` keeps those whose e-mail or name contains it."""
    return _users_page(request, db)


def _users_page(
    request: Request,
    db: DB,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The users page; ``errors`` and ``values``: the new-account form, refused."""
    query = request.query_params.get("q", "")
    problem = rules.text_problem(query, rules.MAX_FILTER)
    search = query.strip() if problem is None else ""
    number = forms.positive_int(request.query_params.get("page"), 1, maximum=rules.MAX_PAGE)
    offset = (number - 1) * USERS_PER_PAGE
    page = user_admin.list_users(db, search=search, limit=USERS_PER_PAGE, offset=offset)
    pages = max(1, math.ceil(page.total / USERS_PER_PAGE))
    if number > pages:  # a page past the end shows the last one
        number = pages
        offset = (number - 1) * USERS_PER_PAGE
        page = user_admin.list_users(db, search=search, limit=USERS_PER_PAGE, offset=offset)
    return render(
        request,
        "admin_users.html",
        {
            "active": "users",
            "page": page,
            "activity": user_admin.activity(db, [u.id for u in page.items]),
            "no_activity": user_admin.Activity(),
            "number": number,
            "pages": pages,
            "q": query if problem is None else "",
            "search_error": f"The search {problem}." if problem else None,
            "errors": errors or {},
            "values": values or {},
            "open_signup": request.app.state.context.settings.open_signup,
        },
        status_code=status,
    )


@router.post("/admin/users")
def create_account(request: Request, uow: UoW, db: DB, admin: AdminUser, form: Form) -> Response:
    """A new account with a random password, shown once on its page to hand over."""
    values = {
        "email": forms.text(form, "email", rules.MAX_EMAIL),
        "display_name": forms.typed(form, "display_name"),
        "role": forms.text(form, "role", 16),
    }
    errors: dict[str, str] = {}
    try:
        address = forms.email(values["email"])
        password = random_password()
        account = user_admin.create_account(
            db, admin, address, password, values["display_name"], values["role"] or "student"
        )
    except forms.FieldError as exc:
        errors["email"] = str(exc)
    except ConflictError:
        uow.rollback()
        errors["email"] = "There is already an account with this e-mail."
    except InvalidInputError as exc:
        uow.rollback()
        field = exc.field if exc.field in ("display_name", "role") else "email"
        errors[field] = f"The {exc.field.replace('_', ' ')} {exc.message}."
    else:
        return _user_page(
            request, db, account.id, password_set=True, new_password=password, created=True
        )
    return _users_page(request, db, errors=errors, values=values, status=422)


def _user_page(
    request: Request,
    db: DB,
    user_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    password_set: bool = False,
    new_password: str | None = None,
    created: bool = False,
    status: int = 200,
) -> Response:
    account = get_user(db, user_id)
    context: dict[str, Any] = {
        "active": "users",
        "account": account,
        "activity": user_admin.activity(db, [account.id]).get(account.id, user_admin.Activity()),
        "errors": errors or {},
        "password_set": password_set,
        "new_password": new_password,
        "created": created,
    }
    return render(request, "admin_user.html", context, status_code=status)


@router.get("/admin/users/{user_id}")
def user_page(request: Request, user_id: str, db: DB, _admin: AdminUser) -> Response:
    return _user_page(request, db, parse_id(user_id))


@router.post("/admin/users/{user_id}/password")
def set_password(
    request: Request, user_id: str, uow: UoW, db: DB, admin: AdminUser, form: Form
) -> Response:
    """A new password, typed by the admin or made at random (``generate``). The page that
    answers shows a random one once, to hand over; it is never put in an address or a log."""
    uid = parse_id(user_id)
    generated = form.get("generate") == "1"
    typed = forms.text(form, "new_password", rules.MAX_PASSWORD)  # as the log-in form cuts it
    password = random_password() if generated else typed
    try:
        account = user_admin.set_password(db, admin, uid, password)
    except (ConflictError, InvalidInputError) as exc:
        uow.rollback()
        if isinstance(exc, InvalidInputError):
            message = f"The new password {exc.message}."
        else:
            message = as_sentence(str(exc))
        error = {"new_password": message}
        return _user_page(request, db, uid, errors=error, status=422)
    shown = password if generated else None
    return _user_page(request, db, account.id, password_set=True, new_password=shown)


@router.post("/admin/users/{user_id}/access")
def set_access(
    request: Request, user_id: str, uow: UoW, db: DB, admin: AdminUser, form: Form
) -> Response:
    """Lock the account out (``active=0``: its sessions and tokens end) or let it back in."""
    return _update(request, uow, db, admin, user_id, is_active=form.get("active") == "1")


@router.post("/admin/users/{user_id}/role")
def set_role(
    request: Request, user_id: str, uow: UoW, db: DB, admin: AdminUser, form: Form
) -> Response:
    return _update(request, uow, db, admin, user_id, role=forms.text(form, "role", 16))


def _update(
    request: Request,
    uow: UoW,
    db: DB,
    admin: AdminUser,
    user_id: str,
    *,
    role: str | None = None,
    is_active: bool | None = None,
) -> Response:
    uid = parse_id(user_id)
    try:
        user_admin.update_user(db, admin, uid, role=role, is_active=is_active)
    except (ConflictError, InvalidInputError) as exc:
        uow.rollback()
        error = {"access": f"Not changed: {exc}."}
        return _user_page(request, db, uid, errors=error, status=409)
    return redirect(f"/admin/users/{uid}", notice="account-changed")
