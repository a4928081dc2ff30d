"""The registrant's account page: the notification callback (the API's /v1/account/callback code) and
transfers waiting for this account's consent (admin.transfers, as the API and CLI), all audited."""

from __future__ import annotations

import re

from batchgen import Article, deposit_xml
from markupsafe import escape

from agency.admin import transfers
from agency.admin.audit import Actor, events
from agency.models import CallbackTarget, Handle
from conftest import basic_headers
from ui_forms import post_form, sign_in, upload


def actions(svc, subject: str) -> list[tuple[str, str]]:
    with svc.db.sessions() as session:
        return [(e.actor, e.action) for e in events(session, subject=subject)]


def test_notification_callback_set_replaced_and_removed(client, svc, alice, monkeypatch):
    sign_in(client)
    refused = post_form(client, "/ui/account", {"form": "callback", "url": "http://127.0.0.1/hook", "endpoint": "e"})
    api = client.put("/v1/account/callback", json={"url": "http://127.0.0.1/hook", "endpoint": "e"},
                     headers=basic_headers("alice", "alice-password", None))
    assert refused.status_code == 400 and api.status_code == 422
    assert str(escape(api.get_json()["error"]["message"])) in refused.get_data(as_text=True)
    assert 'id="no-callback"' in client.get("/ui/account").get_data(as_text=True)

    monkeypatch.setattr(svc, "settings", svc.settings.replace(callback_allow_private=True))
    first = post_form(client, "/ui/account", {"form": "callback", "url": "http://127.0.0.1:9/hook", "endpoint": "main"})
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    shown = re.search(r'id="callback-secret">.*?<code>([^<]+)</code>', first.get_data(as_text=True), re.S).group(1)
    with svc.db.sessions() as session:
        assert session.get(CallbackTarget, alice.id).secret == shown
    again = post_form(client, "/ui/account", {"form": "callback", "url": "http://127.0.0.1:9/other", "endpoint": "two"})
    assert again.status_code == 303  # a replacement keeps the secret: nothing new to show
    page = client.get("/ui/account").get_data(as_text=True)
    assert 'value="http://127.0.0.1:9/other"' in page and 'value="two"' in page and shown not in page
    assert post_form(client, "/ui/account", {"form": "callback-remove"}).status_code == 303
    assert 'id="no-callback"' in client.get("/ui/account").get_data(as_text=True)
    assert [a for _, a in actions(svc, "account:alice")] == ["callback.set", "callback.set", "callback.remove"]


def test_consent_and_decline_transfers_from_the_account_page(app, client, svc, alice, bob):
    sign_in(client)
    upload(client, deposit_xml([Article("10.5555/given"), Article("10.5555/kept")]))
    svc.worker.run_until_idle()
    with svc.db.transaction() as session:
        first = transfers.open_transfer(session, Actor.operator("olga"), "bob", from_login="alice",
                                        dois=["10.5555/given"])
    with svc.db.transaction() as session:
        second = transfers.open_transfer(session, Actor.operator("olga"), "bob", from_login="alice",
                                         dois=["10.5555/kept"])
    page = client.get("/ui/account").get_data(as_text=True)
    assert f'id="transfer-{first.id}"' in page and f'id="transfer-{second.id}"' in page
    consented = post_form(client, "/ui/account", {"form": "consent", "transfer": str(first.id)})
    assert consented.status_code == 303
    assert "you consented" in client.get("/ui/account").get_data(as_text=True)
    twice = post_form(client, "/ui/account", {"form": "consent", "transfer": str(first.id)})
    assert twice.status_code == 400 and "consented to transfer" in twice.get_data(as_text=True)
    declined = post_form(client, "/ui/account", {"form": "decline", "transfer": str(second.id), "reason": "not ours"})
    assert declined.status_code == 303
    other = app.test_client()
    sign_in(other, "bob", "bob-password")
    post_form(other, "/ui/account", {"form": "consent", "transfer": str(first.id)})
    with svc.db.transaction() as session:
        transfers.complete(session, Actor.operator("olga"), first.id)
        assert transfers.view(session, second.id).status == "withdrawn"
        assert session.get(Handle, "10.5555/GIVEN").account_id == bob.id
    assert actions(svc, f"transfer:{second.id}")[-1] == ("account:alice", "transfer.withdraw")
    with svc.db.sessions() as session:
        withdrawn = list(events(session, subject=f"transfer:{second.id}"))[-1]
    assert withdrawn.reason == "declined by alice: not ours"
    assert f'id="transfer-{second.id}"' not in client.get("/ui/account").get_data(as_text=True)


def test_a_transfer_of_other_accounts_cannot_be_touched(app, client, svc, alice, bob):
    from conftest import add_account

    add_account(svc, "carol", "carol-password", "carol@example.org", ["10.7777"])
    bobs = app.test_client()
    sign_in(bobs, "bob", "bob-password")
    upload(bobs, deposit_xml([Article("10.6666/b")]))
    svc.worker.run_until_idle()
    with svc.db.transaction() as session:
        opened = transfers.open_transfer(session, Actor.operator("olga"), "carol", from_login="bob", dois=["10.6666/b"])
    sign_in(client)
    for form in ("consent", "decline"):
        answer = post_form(client, "/ui/account", {"form": form, "transfer": str(opened.id)})
        assert answer.status_code == 400 and "concerns your account" in answer.get_data(as_text=True)
    with svc.db.sessions() as session:
        assert transfers.view(session, opened.id).status == "open"
