"""Driving the web pages with Flask's test client: CSRF tokens read from the page, sign-in, uploads."""

from __future__ import annotations

import io
import re

from agency.admin.operators import create_operator

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    page = client.get(path)
    found = TOKEN.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path}: {page.status_code}"
    return found.group(1)


def post_form(client, path: str, data: dict, form_page: str | None = None, **kwargs):
    token = csrf_token(client, form_page or path)
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


def sign_in(client, login: str = "alice", password: str = "alice-password", staff: bool = False):
    path = "/staff/sign-in" if staff else "/ui/sign-in"
    return post_form(client, path, {"login": login, "password": password})


def upload(client, xml: bytes, name: str = "batch.xml", kind: str | None = None):
    data = {"file": (io.BytesIO(xml), name), **({"kind": kind} if kind else {})}
    return post_form(client, "/ui/upload", data, content_type="multipart/form-data")


def add_operator(svc, name: str = "olga", password: str = "olga-password") -> None:
    with svc.db.transaction() as session:
        create_operator(session, svc.passwords, name, password)
