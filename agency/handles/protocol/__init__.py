"""The Handle protocol (RFC 3652) over TCP and UDP: agency as a local handle service.

Three parts kept apart, as CNRI's own library keeps them: the message model and
its wire codec (``messages``), what the service answers (``service``: resolution,
site information, administration with HS_SECKEY or HS_PUBKEY challenge-response), and the
transports (``server``: asyncio TCP, threaded UDP). Handles are read and written
through a directory object (``directory``) over ``agency.handles.store``, so the
protocol never knows where values live.

May import: the foundations, ``accounts`` and the rest of ``handles``. Never
``web``, ``cli``, ``app``, ``services``, ``wsgi``, nor ``admin`` (the audit trail is
handed in by the composition root).
"""
