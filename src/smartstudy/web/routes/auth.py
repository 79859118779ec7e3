"""Home, sign-up, log-in and log-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from smartstudy.services import accounts
from smartstudy.services.errors import AuthenticationError, ConflictError, InvalidInputError
from smartstudy.store.orm import User
from smartstudy.web import forms, sessions
from smartstudy.web.deps import DB, Form, PageRoute, optional_user, secret_of
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MaybeUser = Annotated[User | None, Depends(optional_user)]


def safe_next(value: str | None) -> str:
    """A local path to go to after logging in; anything else goes to the dashboard."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 for c in value)
    ):
        return "/dashboard"
    return value


def _signed_in_redirect(request: Request, user: User, target: str) -> Response:
    response = redirect(target)
    ws = sessions.signed_in(secret_of(request), user)
    request.state.web_session = ws
    sessions.set_cookie(response, request, ws, secret_of(request))
    return response


@router.get("/")
def home(request: Request, user: MaybeUser) -> Response:
    if user is not None:
        return redirect("/dashboard")
    return render(request, "home.html")


@router.get("/login")
def login_page(request: Request, user: MaybeUser) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if user is not None:
        return redirect(next_url)
    return render(request, "login.html", {"values": {"email": "", "next": next_url}})


@router.post("/login")
def login(request: Request, db: DB, form: Form) -> Response:
    values = {"email": forms.text(form, "email", 320), "next": safe_next(forms.text(form, "next"))}
    password = forms.text(form, "password", 256)
    errors: dict[str, str] = {}
    try:
        forms.required(values["email"], "e-mail address")
    except forms.FieldError as exc:
        errors["email"] = str(exc)
    if not password:
        errors["password"] = "Enter your password."
    if not errors:
        try:
            user = accounts.authenticate(db, values["email"], password)
        except AuthenticationError:
            errors["form"] = "Wrong e-mail or password. Check both and try again."
        else:
            return _signed_in_redirect(request, user, values["next"])
    status = 401 if "form" in errors else 422
    return render(request, "login.html", {"values": values, "errors": errors}, status_code=status)


@router.get("/signup")
def signup_page(request: Request, user: MaybeUser) -> Response:
    if user is not None:
        return redirect("/dashboard")
    return render(request, "signup.html", {"values": {"email": "", "display_name": ""}})


@router.post("/signup")
def signup(request: Request, db: DB, form: Form) -> Response:
    values = {
        "email": forms.text(form, "email", 320),
        "display_name": forms.text(form, "display_name", 120),
    }
    password = forms.text(form, "password", 256)
    confirm = forms.text(form, "password_confirm", 256)
    errors: dict[str, str] = {}
    address = ""
    try:
        address = forms.email(values["email"])
    except forms.FieldError as exc:
        errors["email"] = str(exc)
    if not password:
        errors["password"] = "Choose a password."
    elif len(password) < accounts.MIN_PASSWORD_LENGTH:
        errors["password"] = (
            f"Use at least {accounts.MIN_PASSWORD_LENGTH} characters (you typed {len(password)})."
        )
    elif password != confirm:
        errors["password_confirm"] = "The two passwords are not the same."
    if not errors:
        try:
            user = accounts.create_user(db, address, password, values["display_name"])
            db.commit()
        except ConflictError:
            db.rollback()
            errors["email"] = "There is already an account with this e-mail. Log in instead?"
        except InvalidInputError as exc:
            db.rollback()
            errors[exc.field if exc.field in ("email", "password") else "form"] = (
                exc.message[:1].upper() + exc.message[1:] + "."
            )
        else:
            return _signed_in_redirect(request, user, "/study?done=signed-up")
    return render(request, "signup.html", {"values": values, "errors": errors}, status_code=422)


@router.post("/logout")
def logout(request: Request, form: Form) -> Response:
    response = redirect("/login", notice="logged-out")
    sessions.clear_cookie(response, request)
    return response
