"""HTTP for the upload client: one request with bounded timeouts, retried on network errors, 5xx and 429."""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlencode, urlsplit

RETRY_STATUSES = {429, 502, 503, 504}
CHUNK = 256 * 1024


class UploadError(Exception):
    """Nothing more can be done for this request (retries used up, or an answer that retrying cannot change)."""


class Unauthorized(UploadError):
    """The server refused the login: every other file would be refused too."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Body:
    """A request body streamed from parts (bytes, or a file read in chunks), with its length known up front."""

    parts: list
    content_type: str

    @property
    def length(self) -> int:
        return sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in self.parts)

    def chunks(self, on_bytes: Callable[[int], None]) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, Path):
                with open(part, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        on_bytes(len(chunk))
                        yield chunk
            else:
                yield part


def file_body(path: Path, content_type: str = "application/xml") -> Body:
    return Body([path], content_type)


def multipart_body(fields: dict[str, str], file_field: str, path: Path, file_name: str) -> Body:
    boundary = uuid.uuid4().hex
    head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                    for name, value in fields.items())
    safe_name = file_name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{safe_name}"\r\n'
             "Content-Type: application/xml\r\n\r\n").encode()
    return Body([head, path, f"\r\n--{boundary}--\r\n".encode()], f"multipart/form-data; boundary={boundary}")


@dataclass
class Client:
    """Requests to one server: Basic auth (plain API), timeouts, retries with backoff, Retry-After honoured."""

    base_url: str
    login: str
    password: str
    timeout: float = 60.0
    retries: int = 5
    backoff: float = 1.0
    max_retry_after: float = 300.0
    max_answer_bytes: int = 64 * 1024 * 1024
    sleep: Callable[[float], None] = time.sleep
    on_note: Callable[[str], None] = lambda _note: None
    waited: float = field(default=0.0)

    def _connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UploadError(f"--url must be http(s)://host[:port], not {self.base_url!r}")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        return cls(parts.hostname, parts.port, timeout=self.timeout)

    def url_path(self, path: str, query: dict | None = None) -> str:
        root = urlsplit(self.base_url).path.rstrip("/")
        return root + path + (f"?{urlencode(query)}" if query else "")

    def request(self, method: str, path: str, query: dict | None = None, body: Body | None = None,
                basic_auth: bool = True, on_bytes: Callable[[int], None] = lambda _n: None) -> Answer:
        """The answer to one request; retried on network errors, 429 and 502-504 (raises UploadError at the end)."""
        last = ""
        for attempt in range(self.retries + 1):
            try:
                answer = self._once(method, self.url_path(path, query), body, basic_auth, on_bytes)
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
                delay = self.backoff * 2 ** attempt
            else:
                if answer.status == 401:
                    raise Unauthorized("the server refused the login and password (401)")
                if answer.status not in RETRY_STATUSES:
                    return answer
                last = f"HTTP {answer.status}"
                delay = self._retry_after(answer) or self.backoff * 2 ** attempt
            if attempt == self.retries:
                break
            self.on_note(f"{method} {path}: {last}; retrying in {delay:.0f}s")
            self.waited += delay
            self.sleep(delay)
        raise UploadError(f"{method} {path} failed after {self.retries + 1} attempts: {last}")

    def _retry_after(self, answer: Answer) -> float | None:
        raw = answer.headers.get("retry-after", "")
        try:
            return min(max(float(raw), 0.0), self.max_retry_after)
        except ValueError:
            return None

    def _once(self, method: str, target: str, body: Body | None, basic_auth: bool,
              on_bytes: Callable[[int], None]) -> Answer:
        connection = self._connection()
        try:
            connection.putrequest(method, target)
            if basic_auth:
                token = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
                connection.putheader("Authorization", f"Basic {token}")
            connection.putheader("User-Agent", "agency-upload/1")
            if body is not None:
                connection.putheader("Content-Type", body.content_type)
                connection.putheader("Content-Length", str(body.length))
            connection.endheaders()
            if body is not None:
                for chunk in body.chunks(on_bytes):
                    connection.send(chunk)
            response = connection.getresponse()
            data = response.read(self.max_answer_bytes)
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()
