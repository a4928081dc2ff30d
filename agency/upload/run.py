"""An upload run: which files, in what order, each deposited and followed to its log, and what came of every record."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from lxml import etree

from agency.upload.transport import Answer, Client, Unauthorized, UploadError, file_body, multipart_body

ACCEPTED, REFUSED, FAILED, DUPLICATE, SKIPPED = "accepted", "refused", "failed", "duplicate", "skipped"
FINISHED_STATUSES = {"completed", "refused"}
_CLOSING_DOI_DATA = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?doi_data\s*>")
_PAGE_TEXT = re.compile(rb"<(?:p|li)[^>]*>(.*?)</(?:p|li)>", re.S | re.I)
_TAGS = re.compile(r"<[^>]+>")
SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


@dataclass(frozen=True)
class Candidate:
    """One file to deposit: where it is, the name it is sent as, its size, checksum and (estimated) record count."""

    path: Path
    name: str
    size: int
    sha256: str
    records: int


@dataclass
class RecordOutcome:
    seq: int
    doi: str
    status: str
    message: str


@dataclass
class FileResult:
    candidate: Candidate
    outcome: str
    message: str = ""
    submission_id: str = ""
    records: list[RecordOutcome] = field(default_factory=list)


def collect(paths: list[Path]) -> list[Path]:
    """The files named, and every *.xml under the folders named, in a stable order (raises UploadError)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".xml"))
        elif path.is_file():
            found.append(path)
        else:
            raise UploadError(f"{path}: no such file or folder")
    return found


def examine(path: Path) -> Candidate:
    """Checksum and record count read in one pass (a record is a doi_data element)."""
    digest, records, size, carry = hashlib.sha256(), 0, 0, b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
            window = carry + chunk
            matches = list(_CLOSING_DOI_DATA.finditer(window))
            records += len(matches)
            carry = window[max(matches[-1].end() if matches else 0, len(window) - 64):]
    return Candidate(path, path.name, size, digest.hexdigest(), records)


# -- the two ways of speaking to a server ----------------------------------------------------------
class ApiProtocol:
    """/v1/deposits: POST the file, follow the submission until it is finished."""

    def __init__(self, client: Client, poll_seconds: float, log_timeout: float) -> None:
        self.client, self.poll_seconds, self.log_timeout = client, poll_seconds, log_timeout

    def deposit(self, candidate: Candidate, on_bytes) -> FileResult:
        answer = self.client.request("POST", "/v1/deposits", {"file_name": candidate.name},
                                     file_body(candidate.path), on_bytes=on_bytes)
        if answer.status in (200, 202):
            return self._follow(candidate, str(answer.json()["submission_id"]))
        return FileResult(candidate, REFUSED if 400 <= answer.status < 500 else FAILED,
                          _api_message(answer), _json_field(answer, "submission_id"))

    def _follow(self, candidate: Candidate, submission_id: str) -> FileResult:
        deadline = time.monotonic() + self.log_timeout
        while True:
            answer = self.client.request("GET", f"/v1/deposits/{submission_id}")
            body = answer.json() if answer.status == 200 else {}
            if body.get("status") in FINISHED_STATUSES:
                records = [RecordOutcome(r["seq"], r.get("doi") or "", r["status"], r.get("msg") or "")
                           for r in body.get("records", [])]
                outcome = ACCEPTED if body["status"] == "completed" else REFUSED
                return FileResult(candidate, outcome, _refusal_summary(body), submission_id, records)
            if time.monotonic() >= deadline:
                return FileResult(candidate, FAILED, f"no log within {self.log_timeout:.0f}s "
                                                     f"(status {body.get('status', answer.status)})", submission_id)
            self.client.sleep(self.poll_seconds)


class ServletProtocol:
    """Crossref-style: /servlet/deposit (doMDUpload), then /servlet/submissionDownload?type=result by file name."""

    def __init__(self, client: Client, poll_seconds: float, log_timeout: float) -> None:
        self.client, self.poll_seconds, self.log_timeout = client, poll_seconds, log_timeout

    def deposit(self, candidate: Candidate, on_bytes) -> FileResult:
        fields = {"operation": "doMDUpload", "login_id": self.client.login, "login_passwd": self.client.password}
        body = multipart_body(fields, "fname", candidate.path, candidate.name)
        answer = self.client.request("POST", "/servlet/deposit", body=body, basic_auth=False, on_bytes=on_bytes)
        submission_id = answer.headers.get("x-submission-id", "")
        if answer.status != 200:
            return FileResult(candidate, REFUSED if 400 <= answer.status < 500 else FAILED,
                              _page_message(answer), submission_id)
        return self._follow(candidate, submission_id)

    def _follow(self, candidate: Candidate, submission_id: str) -> FileResult:
        query = {"usr": self.client.login, "pwd": self.client.password, "file_name": candidate.name,
                 "type": "result"}
        deadline = time.monotonic() + self.log_timeout
        while True:
            answer = self.client.request("GET", "/servlet/submissionDownload", query, basic_auth=False)
            log = _parse_log(answer.body) if answer.status == 200 else None
            if log is not None and log.get("status") == "completed":
                return _log_result(candidate, log, submission_id)
            if time.monotonic() >= deadline:
                return FileResult(candidate, FAILED, f"no completed log within {self.log_timeout:.0f}s",
                                  submission_id)
            self.client.sleep(self.poll_seconds)


def _parse_log(data: bytes):
    try:
        return etree.fromstring(data, SAFE_XML)
    except etree.XMLSyntaxError:
        return None


def _log_result(candidate: Candidate, log, submission_id: str) -> FileResult:
    records = [RecordOutcome(seq, d.findtext("doi") or "", d.get("status", ""), d.findtext("msg") or "")
               for seq, d in enumerate(log.iter("record_diagnostic"), start=1)]
    refusal = log.find("refusal")
    if refusal is not None:
        return FileResult(candidate, REFUSED, refusal.findtext("msg") or "refused", submission_id, records)
    return FileResult(candidate, ACCEPTED, "", log.findtext("submission_id") or submission_id, records)


def _json_field(answer: Answer, name: str) -> str:
    try:
        value = answer.json().get(name)
    except (ValueError, AttributeError):
        return ""
    return "" if value is None else str(value)


def _api_message(answer: Answer) -> str:
    try:
        error = answer.json()["error"]
        return error["message"] if isinstance(error, dict) else str(error)
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status}: {answer.body[:200].decode('utf-8', 'replace')}"


def _refusal_summary(body: dict) -> str:
    refusal = body.get("refusal") or {}
    return refusal.get("summary") or ""


def _page_message(answer: Answer) -> str:
    texts = [" ".join(_TAGS.sub("", m.decode("utf-8", "replace")).split()) for m in _PAGE_TEXT.findall(answer.body)]
    return f"HTTP {answer.status}: " + (" ".join(t for t in texts if t)[:500] or "refused")


# -- remembering what was accepted (--resume) --------------------------------------------------
class ResumeState:
    """Checksums of files accepted before, kept in a JSON file rewritten atomically after each file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.accepted: dict[str, dict] = {}
        if path.exists():
            try:
                self.accepted = json.loads(path.read_text(encoding="utf-8")).get("accepted", {})
            except (ValueError, AttributeError):
                raise UploadError(f"{path} is not a state file written by agency upload") from None

    def remember(self, result: FileResult) -> None:
        self.accepted[result.candidate.sha256] = {"file": str(result.candidate.path),
                                                  "submission_id": result.submission_id}
        part = self.path.with_name(self.path.name + ".part")
        part.write_text(json.dumps({"accepted": self.accepted}, indent=1), encoding="utf-8")
        os.replace(part, self.path)


# -- progress and the report ---------------------------------------------------------------------
class Progress:
    """Files, records and bytes done of the total: one line redrawn on a terminal, else a line per file."""

    def __init__(self, candidates: list[Candidate], stream: TextIO) -> None:
        self.stream = stream
        self.total_files, self.total_records = len(candidates), sum(c.records for c in candidates)
        self.total_bytes = sum(c.size for c in candidates)
        self.files = self.records = self.bytes = 0
        self.live = stream.isatty()

    def sent(self, count: int) -> None:
        self.bytes = min(self.bytes + count, self.total_bytes)
        if self.live:
            self._draw("")

    def done(self, result: FileResult) -> None:
        self.files += 1
        self.records += result.candidate.records
        if result.outcome in (SKIPPED, DUPLICATE):  # done without sending a byte
            self.bytes = min(self.bytes + result.candidate.size, self.total_bytes)
        note = f"{result.candidate.path}: {result.outcome}" + (f" ({result.message})" if result.message else "")
        if self.live:
            self.stream.write("\r\x1b[K" + note + "\n")
            self._draw("")
        else:
            self._draw(note)

    def _draw(self, note: str) -> None:
        width = 24
        filled = width * self.files // max(self.total_files, 1)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] files {self.files}/{self.total_files}  records "
                f"{self.records}/{self.total_records}  bytes {self.bytes}/{self.total_bytes}")
        if self.live:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(f"{line}  {note}\n")
        self.stream.flush()


def summary_table(results: list[FileResult]) -> str:
    """Files by outcome, then records by status, as an aligned table."""
    files = Counter(r.outcome for r in results)
    records = Counter(rec.status for r in results for rec in r.records)
    rows = [("files", "", "")] + [("", outcome, str(files[outcome])) for outcome in
                                  (ACCEPTED, REFUSED, FAILED, DUPLICATE, SKIPPED) if files[outcome]]
    rows += [("records", "", "")] + [("", status, str(count)) for status, count in sorted(records.items())]
    rows.append(("records total", "", str(sum(records.values()))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}".rstrip() for a, b, c in rows) + "\n"


CSV_COLUMNS = ["file", "sha256", "file_outcome", "submission_id", "seq", "doi", "status", "message"]


def write_csv(path: Path, results: list[FileResult]) -> None:
    """Every record's outcome; a file without records (refused, failed, skipped) gets one row saying why."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for result in results:
            base = [str(result.candidate.path), result.candidate.sha256, result.outcome, result.submission_id]
            if not result.records:
                writer.writerow(base + ["", "", "", result.message])
            for record in result.records:
                writer.writerow(base + [record.seq, record.doi, record.status, record.message])


# -- the run ------------------------------------------------------------------------------------
@dataclass
class UploadOptions:
    paths: list[Path]
    csv_path: Path
    state_path: Path
    resume: bool = False
    servlet: bool = False
    poll_seconds: float = 1.0
    log_timeout: float = 600.0


def upload(client: Client, options: UploadOptions, stream: TextIO = sys.stderr,
           examine_file: Callable[[Path], Candidate] = examine) -> list[FileResult]:
    """Deposit every file once, in order, each followed to its log; write the CSV and the resume state."""
    candidates = [examine_file(p) for p in collect(options.paths)]
    state = ResumeState(options.state_path)
    protocol_class = ServletProtocol if options.servlet else ApiProtocol
    protocol = protocol_class(client, options.poll_seconds, options.log_timeout)
    progress = Progress(candidates, stream)
    client.on_note = lambda note: stream.write(f"  {note}\n")
    results: list[FileResult] = []
    seen: dict[str, Candidate] = {}
    try:
        for candidate in candidates:
            if options.resume and candidate.sha256 in state.accepted:
                before = state.accepted[candidate.sha256]
                result = FileResult(candidate, SKIPPED, f"accepted before as submission {before['submission_id']}",
                                    str(before["submission_id"]))
            elif candidate.sha256 in seen:
                result = FileResult(candidate, DUPLICATE, f"same content as {seen[candidate.sha256].path}")
            else:
                seen[candidate.sha256] = candidate
                try:
                    result = protocol.deposit(candidate, progress.sent)
                except Unauthorized:
                    raise  # every other file would be refused the same way
                except UploadError as exc:
                    result = FileResult(candidate, FAILED, str(exc))
                if result.outcome == ACCEPTED:
                    state.remember(result)
            results.append(result)
            progress.done(result)
    finally:
        write_csv(options.csv_path, results)
    return results
