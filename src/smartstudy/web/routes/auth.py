"""Home, sign-up, log-in and log-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from smartstudy.services import accounts, localtime, rules
from smartstudy.services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    TooManyAttemptsError,
)
from smartstudy.store.orm import User
from smartstudy.web import forms
from smartstudy.web.deps import (
    DB,
    Form,
    PageRoute,
    UoW,
    as_sentence,
    client_address,
    optional_user,
    sign_in,
    sign_out,
)
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MaybeUser = Annotated[User | None, Depends(optional_user)]


def safe_next(value: str | None) -> str:
    """A local path to go to after logging in; "" for none (or anything else): then the
    user goes to their start page (``start_page``)."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 for c in value)
    ):
        return ""
    return value


def start_page(user: User) -> str:
    """Where a signed-in user lands: admins on the models page, students on their
    dashboard."""
    return "/admin/models" if user.role == "admin" else "/dashboard"


def _signed_in_redirect(request: Request, db: DB, user: User, target: str) -> Response:
    response = redirect(target)
    sign_in(request, db, user, response)
    return response


@router.get("/")
def home(request: Request, user: MaybeUser) -> Response:
    if user is not None:
        return redirect(start_page(user))
    return render(request, "home.html")


@router.get("/login")
def login_page(request: Request, user: MaybeUser) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if user is not None:
        return redirect(next_url or start_page(user))
    return render(request, "login.html", {"values": {"email": "", "next": next_url}})


@router.post("/login")
def login(request: Request, db: DB, form: Form) -> Response:
    values = {
        "email": forms.text(form, "email", rules.MAX_EMAIL),
        "next": safe_next(forms.text(form, "next")),
    }
    password = forms.text(form, "password", rules.MAX_PASSWORD)
    errors: dict[str, str] = {}
    try:
        forms.required(values["email"], "e-mail address")
    except forms.FieldError as exc:
        errors["email"] = str(exc)
    if not password:
        errors["password"] = "Enter your password."
    if not errors:
        try:
            user = accounts.log_in(db, values["email"], password, client_address(request))
        except AuthenticationError:
            errors["form"] = "Wrong e-mail or password. Check both and try again."
        except TooManyAttemptsError as exc:
            # Locked out: the password was not even checked. Say when to come back.
            errors["form"] = as_sentence(str(exc))
            page = render(
                request, "login.html", {"values": values, "errors": errors}, status_code=429
            )
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        else:
            return _signed_in_redirect(request, db, user, values["next"] or start_page(user))
    status = 401 if "form" in errors else 422
    return render(request, "login.html", {"values": values, "errors": errors}, status_code=status)


def _signup_closed(request: Request, status: int) -> Response | None:
    """The sign-up page saying that sign-up is closed, when it is (``open_signup``)."""
    if request.app.state.context.settings.open_signup:
        return None
    return render(request, "signup.html", {"closed": True}, status_code=status)


@router.get("/signup")
def signup_page(request: Request, user: MaybeUser) -> Response:
    if user is not None:
        return redirect(start_page(user))
    if (closed := _signup_closed(request, 200)) is not None:
        return closed
    values = {"email": "", "display_name": "", "time_zone": "", "locale": ""}
    return render(request, "signup.html", {"values": values, "closed": False})


@router.post("/signup")
def signup(request: Request, uow: UoW, db: DB, form: Form) -> Response:
    if (closed := _signup_closed(request, 403)) is not None:
        return closed
    values = {
        "email": forms.text(form, "email", rules.MAX_EMAIL),
        "display_name": forms.typed(form, "display_name"),
        # What the browser reported (locale.js); anything unusable means UTC / en-GB, as
        # sign-up must never fail over it. Settings can change both later.
        "time_zone": localtime.time_zone_or_default(forms.text(form, "time_zone", 100)),
        "locale": localtime.locale_or_default(forms.text(form, "locale", 100)),
    }
    password = forms.text(form, "password", rules.MAX_PASSWORD)
    confirm = forms.text(form, "password_confirm", rules.MAX_PASSWORD)
    errors: dict[str, str] = {}
    address = ""
    try:
        address = forms.email(values["email"])
    except forms.FieldError as exc:
        errors["email"] = str(exc)
    if not password:
        errors["password"] = "Choose a password."
    elif len(password) < rules.MIN_PASSWORD:
        errors["password"] = (
            f"Use at least {rules.MIN_PASSWORD} characters (you typed {len(password)})."
        )
    elif password != confirm:
        errors["password_confirm"] = "The two passwords are not the same."
    if not errors:
        try:
            user = accounts.create_user(
                db,
                address,
                password,
                values["display_name"],
                time_zone=values["time_zone"],
                locale=values["locale"],
            )
        except ConflictError:
            uow.rollback()
            errors["email"] = "There is already an account with this e-mail. Log in instead?"
        except InvalidInputError as exc:
            uow.rollback()
            field = exc.field if exc.field in ("email", "password", "display_name") else "form"
            errors[field] = as_sentence(exc.message)
        else:
            return _signed_in_redirect(request, db, user, "/study?done=signed-up")
    context = {"values": values, "errors": errors, "closed": False}
    return render(request, "signup.html", context, status_code=422)


@router.post("/logout")
def logout(request: Request, db: DB, form: Form) -> Response:
    """Log out: the session ends on the server too, so a copy of the cookie is worthless."""
    response = redirect("/login", notice="logged-out")
    sign_out(request, db, response)
    return response
