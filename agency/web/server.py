"""Serving the application with waitress, refusing what can be refused from the headers alone.

Waitress reads a whole request body (to memory, then a temporary file) before the
application sees the request. So two checks happen in its parser, as soon as the
headers are in and before any of the body is read:

- the body limit is ``AGENCY_MAX_BATCH_BYTES`` (plus room for multipart framing):
  a larger ``Content-Length`` is answered 413 at once, a chunked body is cut off
  when it passes the limit (waitress's ``max_request_body_size``);
- a POST to an HTTP Basic endpoint (``/v1/deposits``, ``/v1/queries``) without
  Basic credentials is answered 401 at once.

Credentials that are present are checked by the application (the password hash
must not run in waitress's event loop); the body they came with is bounded by the
limit above. The servlet takes credentials inside its multipart body, so only the
size limit applies to it before the application runs.
"""

from __future__ import annotations

import json

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.utilities import Error, RequestEntityTooLarge

BASIC_AUTH_UPLOADS = ("/v1/deposits", "/v1/queries")
MULTIPART_OVERHEAD = 1024 * 1024  # multipart framing and form fields beside the file


class _JsonError(Error):
    """A waitress-level refusal with the application's own error shape (web.common.error_body)."""

    extra_headers: tuple[tuple[str, str], ...] = ()
    error_code = "error"

    def to_response(self, ident=None):
        body = json.dumps({"error": {"code": self.error_code, "message": self.body, "details": {}}}).encode()
        return (f"{self.code} {self.reason}", [("Content-Type", "application/json"), *self.extra_headers], body)


class _Unauthorized(_JsonError):
    code, reason, error_code = 401, "Unauthorized", "unauthorized"
    extra_headers = (("WWW-Authenticate", 'Basic realm="agency", charset="UTF-8"'),)


class _TooLarge(_JsonError):
    code, reason, error_code = 413, "Request Entity Too Large", "too_large"


def _checked_parser(max_batch_bytes: int) -> type[HTTPRequestParser]:
    class CheckedRequestParser(HTTPRequestParser):
        """waitress's parser, plus the refusals above once the headers are in."""

        def received(self, data):
            had_headers = self.headers_finished
            consumed = super().received(data)
            if isinstance(self.error, RequestEntityTooLarge) and not isinstance(self.error, _TooLarge):
                self.error = _TooLarge(f"The request is larger than the limit of {max_batch_bytes} bytes; "
                                       "split the batch.")
            elif not had_headers and self.headers_finished and self.error is None and not self.completed:
                if self.command == "POST" and self.path.rstrip("/") in BASIC_AUTH_UPLOADS and \
                        not self.headers.get("AUTHORIZATION", "").lower().startswith("basic "):
                    self.error = _Unauthorized("Login and password required (HTTP Basic), sent before the body.")
                    self.completed = True
            return consumed

    return CheckedRequestParser


def make_server(app, max_batch_bytes: int, **adjustments):
    """A waitress server for ``app`` whose channels use the checked parser."""
    server = create_server(app, max_request_body_size=max_batch_bytes + MULTIPART_OVERHEAD, **adjustments)
    channel = type("CheckedChannel", (HTTPChannel,), {"parser_class": _checked_parser(max_batch_bytes)})
    servers = [server] if isinstance(server, BaseWSGIServer) else \
        [s for s in server.map.values() if isinstance(s, BaseWSGIServer)]
    for each in servers:
        each.channel_class = channel
    return server
