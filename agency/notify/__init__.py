"""Notify: everything that must reach a person once — the mail outbox and the notices put in it.

Messages are written to the outbox in the same transaction as their cause and
delivered (SMTP or a maildir) with retries.

May import: the foundations, ``accounts``, ``deposit`` (files, logs) and
``runtime``. Never the entry points or ``web``.
"""
