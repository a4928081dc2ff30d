"""The one logging set-up: formats, quiet libraries, credential redaction."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agency.config import SettingError
from agency.operations import logs
from agency.operations.logs import configure_logging, redact_query


@pytest.fixture
def captured():
    stream = io.StringIO()
    yield stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs._AgencyHandler)]:
        root.removeHandler(handler)


def test_redact_query_replaces_every_credential_value():
    assert redact_query("usr=alice&pwd=s3cret&qdata=a%7Cb") == "usr=alice&pwd=[redacted]&qdata=a%7Cb"
    assert "s3cret" not in redact_query("login_id=a&LOGIN_PASSWD=s3cret&login_passwd=s3cret&password=s3cret")
    assert redact_query("doi_batch_id=x&type=result") == "doi_batch_id=x&type=result"  # untouched
    assert redact_query("") == ""


def test_json_lines_carry_the_fields(captured):
    configure_logging("json", "INFO", captured)
    logging.getLogger("agency.test").info("hello %s", "there", extra={"fields": {"status": 200}})
    entry = json.loads(captured.getvalue().splitlines()[-1])
    assert entry["message"] == "hello there" and entry["status"] == 200 and entry["logger"] == "agency.test"
    assert entry["level"] == "INFO" and entry["time"].endswith("+00:00")


def test_configuring_twice_does_not_double_lines_and_quiets_apscheduler(captured):
    configure_logging("text", "INFO", captured)
    configure_logging("text", "INFO", captured)
    logging.getLogger("agency.test").info("once")
    logging.getLogger("apscheduler.executors.default").info('Running job "mail delivery"')
    logging.getLogger("apscheduler.scheduler").warning("a scheduler warning")
    lines = captured.getvalue().splitlines()
    assert sum("once" in line for line in lines) == 1
    assert not any("Running job" in line for line in lines)
    assert any("a scheduler warning" in line for line in lines)


def test_a_wrong_format_or_level_names_the_variable():
    with pytest.raises(SettingError, match="AGENCY_LOG_FORMAT"):
        configure_logging("xml")
    with pytest.raises(SettingError, match="AGENCY_LOG_LEVEL"):
        configure_logging("text", "LOUD")
