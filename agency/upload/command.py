"""``agency upload PATH… --url URL --login LOGIN``: the command line of the upload client.

The password comes from ``AGENCY_PASSWORD`` or a prompt, never from an argument
(arguments are visible to every user of the machine in the process list).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from agency.upload.run import ACCEPTED, UploadOptions, summary_table, upload
from agency.upload.transport import Client, Unauthorized, UploadError

PASSWORD_VARIABLE = "AGENCY_PASSWORD"


def add_parser(sub) -> None:
    parser = sub.add_parser("upload", help="deposit files or folders of batches to an agency or Crossref-style "
                                           "endpoint, wait for each log, report every record",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="batch files, or folders (every *.xml inside)")
    parser.add_argument("--url", required=True, help="the service, e.g. https://ra.example.org")
    parser.add_argument("--login", required=True)
    parser.add_argument("--servlet", action="store_true",
                        help="speak /servlet/deposit and /servlet/submissionDownload (any Crossref-style endpoint)")
    parser.add_argument("--resume", action="store_true", help="skip files accepted before (by checksum)")
    parser.add_argument("--csv", type=Path, default=Path("upload-results.csv"), help="every record's outcome")
    parser.add_argument("--state", type=Path, default=Path(".agency-upload-state.json"),
                        help="checksums of accepted files, read by --resume")
    parser.add_argument("--retries", type=int, default=5, help="retries of a request (network errors, 429, 5xx)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for one request")
    parser.add_argument("--log-timeout", type=float, default=600.0, help="seconds to wait for each file's log")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at a pending log")
    parser.set_defaults(func=run)


def read_password(login: str) -> str:
    password = os.environ.get(PASSWORD_VARIABLE)
    if password:
        return password
    if not sys.stdin.isatty():
        raise UploadError(f"set {PASSWORD_VARIABLE}, or run on a terminal to be asked for the password")
    return getpass.getpass(f"password for {login}: ")


def run(args) -> int:
    try:
        client = Client(args.url, args.login, read_password(args.login), timeout=args.timeout, retries=args.retries)
        options = UploadOptions(args.paths, args.csv, args.state, resume=args.resume, servlet=args.servlet,
                                poll_seconds=args.poll, log_timeout=args.log_timeout)
        results = upload(client, options)
    except Unauthorized as exc:
        print(f"agency upload: {exc}; nothing more was sent", file=sys.stderr)
        return 2
    except UploadError as exc:
        print(f"agency upload: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(summary_table(results))
    print(f"every record's outcome: {args.csv}")
    return 0 if all(r.outcome in (ACCEPTED, "skipped", "duplicate") for r in results) else 1
