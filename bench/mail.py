"""Mail throughput: enqueue N messages with an attachment, deliver them over SMTP (aiosmtpd on
loopback) and into a maildir, and print messages per second for each step.

    .venv/bin/python bench/mail.py [--messages 2000] [--attachment-kb 64] [--database-url URL]

The aiosmtpd server runs in the same process (it needs the test extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller  # noqa: E402
from scratch import free_port, scratch_database  # noqa: E402

from agency.config import load_settings  # noqa: E402
from agency.db import open_database  # noqa: E402
from agency.notify.outbox import MailSender, enqueue_mail  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        self.bytes += len(envelope.content)
        return "250 OK"


def enqueue_many(db, count: int, prefix: str, attachment: str) -> float:
    started = time.perf_counter()
    for start in range(0, count, 500):
        with db.transaction() as session:
            for n in range(start, min(start + 500, count)):
                enqueue_mail(session, key=f"{prefix}-{n}", recipients=["dep@example.org"],
                             subject=f"Batch {n}", text=f"Batch {n} was processed.\n" * 20,
                             html=f"<p>Batch {n} was processed.</p>" * 20, attachment_path=attachment)
    return time.perf_counter() - started


def report(step: str, count: int, seconds: float) -> None:
    print(f"{step:<28} {count:>7} messages  {seconds:8.2f} s  {count / seconds:9.1f} msg/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--attachment-kb", type=int, default=64)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a throwaway schema is used)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.database_url, Path(tmp) / 'bench.db') as url:
        root = Path(tmp)
        settings = load_settings(environ={}, data_dir=root / "var", batch_dir=root / "batches", database_url=url)
        (settings.batch_dir / "bench").mkdir(parents=True)
        (settings.batch_dir / "bench/combined.xml").write_bytes(b"<x>" + b"y" * (args.attachment_kb * 1024) + b"</x>")
        db = open_database(url)
        db.create_all()
        print(f"database {db.dialect}, attachment {args.attachment_kb} KiB")

        report("enqueue (500 per commit)", args.messages, enqueue_many(db, args.messages, "smtp", "bench/combined.xml"))
        counter = Counter()
        controller = Controller(counter, hostname="127.0.0.1", port=free_port())
        controller.start()
        try:
            sender = MailSender(settings.replace(smtp_url=f"smtp://127.0.0.1:{controller.port}"), db)
            started = time.perf_counter()
            delivered = sender.deliver_due()
            report("deliver over SMTP", delivered, time.perf_counter() - started)
            assert counter.count == delivered == args.messages, (counter.count, delivered)
        finally:
            controller.stop()

        enqueue_many(db, args.messages, "maildir", "bench/combined.xml")
        started = time.perf_counter()
        delivered = MailSender(settings, db).deliver_due()
        report("deliver to maildir (fsync)", delivered, time.perf_counter() - started)
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
