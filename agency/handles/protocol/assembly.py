"""Building the handle server from the settings: key pair, site record, service, transports."""

from __future__ import annotations

from typing import Callable

from agency.config import Settings
from agency.db import Database
from agency.handles.protocol.answer_cache import AnswerCache, change_marker
from agency.handles.protocol.authentication import Challenges
from agency.handles.protocol.directory import StoreDirectory
from agency.handles.protocol.server import HandleServer, ServerLimits
from agency.handles.protocol.service import HandleService, Limits
from agency.handles.protocol.signing import ResponseSigner
from agency.handles.protocol.site import SiteSettings, load_or_create_private_key, public_key_bytes, site_info
from agency.handles.values import SiteInfo
from agency.sign_in import SignInGuard, SignInLimits


def site_record(settings: Settings, port: int, key=None) -> SiteInfo:
    """This service's HS_SITE record for its private ``key`` (by default the one kept in the data folder,
    generated on first use)."""
    key = key or load_or_create_private_key(settings.data_dir)
    return site_info(SiteSettings(settings.handle_public_address, port, settings.handle_http_port,
                                  settings.handle_site_serial, "agency local handle service"),
                     public_key_bytes(key))


def answer_cache(settings: Settings, db: Database) -> AnswerCache | None:
    """The resolution answer cache, where the database has a cheap change check (SQLite) and it is not off."""
    if settings.handle_answer_cache_entries < 1 or settings.handle_answer_cache_bytes < 1:
        return None
    marker = change_marker(db.engine)
    if marker is None:
        return None
    return AnswerCache(marker, settings.handle_answer_cache_entries, settings.handle_answer_cache_bytes)


def key_guard(settings: Settings) -> SignInGuard:
    """Wrong key answers (protocol challenges and REST Basic auth), limited per key and per client address as
    sign-ins are: guessing at one key from many addresses is refused, and so is one address trying many keys."""
    return SignInGuard(SignInLimits(failures_per_login=settings.handle_auth_failures_per_key,
                                    failures_per_address=settings.handle_auth_failures,
                                    window_seconds=settings.handle_auth_window_seconds))


def build_handle_server(settings: Settings, db: Database, audit: Callable | None = None,
                        port: int | None = None, sockets: tuple | None = None,
                        guard: SignInGuard | None = None) -> HandleServer:
    """A bound (not yet started) server; the site record names the port actually bound. ``guard``: the key
    guard to share (with the REST API, in one process); by default one of its own."""
    key = load_or_create_private_key(settings.data_dir)
    service = HandleService(db, StoreDirectory(db, settings.handle_ttl), b"", site_serial=settings.handle_site_serial,
                            limits=Limits(settings.handle_max_message_bytes), audit=audit,
                            challenges=Challenges(db, settings.handle_max_message_bytes),
                            guard=guard or key_guard(settings), answers=answer_cache(settings, db),
                            signer=ResponseSigner(key))
    server = HandleServer(service, settings.handle_host, settings.handle_port if port is None else port,
                          ServerLimits(max_connections=settings.handle_max_connections,
                                       read_timeout=settings.handle_read_timeout,
                                       idle_timeout=settings.handle_idle_timeout, workers=settings.handle_workers,
                                       udp_threads=settings.udp_threads,
                                       max_udp_waiting=settings.handle_max_udp_waiting), sockets=sockets)
    service.site_record = site_record(settings, server.port, key).encode()
    return server
