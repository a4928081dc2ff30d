"""The transports: HDL-TCP on an asyncio loop, HDL-UDP on a few blocking threads, both on one port.

TCP: the loop reads whole messages (envelope, then exactly the length it
announces, refused above the message limit) with a deadline per message and
an idle limit between messages, so a slow or silent client costs a coroutine
and a buffer, never a worker. Only complete messages go to the worker pool,
whose size bounds the database work in flight; connections beyond the limit
are closed at once.

UDP: each thread receives a datagram, answers it and sends the response,
split into 512-octet packets when longer (the multi-packet form CNRI's clients
reassemble). Requests that arrive split are reassembled within bounds (size,
count of partial messages, a few seconds). A flood can only fill the kernel's
socket buffer; the threads answer what they can and the rest is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from agency.handles.protocol import messages as m
from agency.handles.protocol.service import HandleService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int = 256
    read_timeout: float = 10.0  # to receive one whole message once its first octet has arrived
    idle_timeout: float = 30.0  # between messages on one connection
    workers: int = 8
    # Threads receiving datagrams and answering resolutions themselves. One: more contend for the GIL and
    # the answer cache's lock (4 threads answered a quarter of what 1 did, bench/handle_protocol.py).
    udp_threads: int = 1
    max_partial_udp: int = 64  # split UDP requests being reassembled at once (each at most the message limit)
    # Other UDP requests (administration, challenge answers, split messages) wait for a worker thread, so that
    # a slow one never holds resolution up; past this many waiting, datagrams are dropped (the client retries).
    max_udp_waiting: int = 64
    # Datagrams taken off the socket at once, when they have arrived already: one check of the store for
    # changes serves them all (it costs more than the rest of a kept answer).
    udp_batch: int = 32


class HandleServer:
    """Serves ``service`` on ``host``:``port`` over TCP and UDP (port 0: a free port, the same for both)."""

    def __init__(self, service: HandleService, host: str = "127.0.0.1", port: int = 2641,
                 limits: ServerLimits = ServerLimits(), sockets: tuple | None = None) -> None:
        self.service = service
        self.host = host
        self.limits = limits
        self.max_bytes = service.limits.max_message_bytes
        self._tcp, self._udp = sockets or bind_pair(host, port)
        self.port = self._tcp.getsockname()[1]
        self._pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="hdl-worker")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections = 0
        self._ready = threading.Event()
        self._partial: OrderedDict[tuple, tuple[float, dict[int, bytes], m.Envelope]] = OrderedDict()
        self._partial_lock = threading.Lock()
        self._udp_waiting = threading.BoundedSemaphore(limits.max_udp_waiting)

    # -- life cycle

    def start(self) -> "HandleServer":
        thread = threading.Thread(target=self._run_tcp, name="hdl-tcp", daemon=True)
        thread.start()
        self._threads.append(thread)
        # Blocking receives with a kernel-side timeout (to notice stop()), not Python's socket timeout: that one
        # polls before each receive, and a datagram then wakes every idle UDP thread (each takes the GIL only to
        # find nothing to read); a thread blocked in recvfrom is woken alone.
        self._udp.settimeout(None)
        self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 500_000))
        for n in range(self.limits.udp_threads):
            t = threading.Thread(target=self._run_udp, name=f"hdl-udp-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for sock in (self._tcp, self._udp):
            try:
                sock.close()
            except OSError:
                pass

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    # -- TCP

    def _run_tcp(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._connection, sock=self._tcp,
                                                              limit=64 * 1024))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= self.limits.max_connections:
            writer.close()
            return
        self._connections += 1
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else "?"
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    first = await asyncio.wait_for(reader.readexactly(1), self.limits.idle_timeout)
                    rest = await asyncio.wait_for(self._read_rest(reader), self.limits.read_timeout)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                if rest is None:
                    return
                head, payload = first + rest[0], rest[1]
                if payload is None:  # announced length over the limit: say so, then hang up
                    response = _too_long(m.Envelope.decode(head), self.max_bytes)
                elif answered_at_once(head[2], payload):  # read-only and quick: no hand-over to a worker
                    response = self.service.answer_octets(head, payload, address)
                else:
                    response = await loop.run_in_executor(self._pool, self.service.answer_octets, head, payload,
                                                          address)
                if response:
                    writer.write(response)
                    await asyncio.wait_for(writer.drain(), self.limits.read_timeout)
                if payload is None:
                    return
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            return
        finally:
            self._connections -= 1
            writer.close()

    async def _read_rest(self, reader: asyncio.StreamReader):
        """The envelope's other 19 octets and the message it announces (None for the message if too long)."""
        head = await reader.readexactly(m.ENVELOPE_SIZE - 1)
        length = int.from_bytes(head[15:19], "big", signed=True)
        if length < 0 or length > self.max_bytes:
            return head, None
        return head, await reader.readexactly(length)

    # -- UDP

    def _run_udp(self) -> None:
        sock, batch_limit = self._udp, self.limits.udp_batch
        while not self._stop.is_set():
            try:
                batch = [sock.recvfrom(65535)]
            except (BlockingIOError, InterruptedError, socket.timeout):  # the receive timeout: check for stop
                continue
            except OSError:
                return
            # What else has arrived already: one check of the store for changes serves all of it.
            while len(batch) < batch_limit:
                try:
                    batch.append(sock.recvfrom(65535, socket.MSG_DONTWAIT))
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    return
            checked = None
            for datagram, peer in batch:
                if len(datagram) >= m.ENVELOPE_SIZE and answered_at_once(datagram[2], datagram[m.ENVELOPE_SIZE:]):
                    if checked is None:
                        checked = self.service.check_store()
                    self._udp_reply(datagram, peer, checked)
                elif self._udp_waiting.acquire(blocking=False):
                    try:
                        self._pool.submit(self._udp_reply_waiting, datagram, peer)
                    except RuntimeError:  # the pool has shut down: stopping
                        self._udp_waiting.release()
                # else dropped: too many requests wait for a worker already; UDP clients retry

    def _udp_reply(self, datagram: bytes, peer, checked: int | None = None) -> None:
        try:
            response = self._udp_answer(datagram, peer, checked)
            if response:
                for packet in m.udp_packets(response):
                    self._udp.sendto(packet, peer)
        except OSError:
            pass
        except Exception:  # one bad datagram must never stop the thread
            log.exception("UDP datagram from %s", peer[0])

    def _udp_reply_waiting(self, datagram: bytes, peer) -> None:
        try:
            self._udp_reply(datagram, peer)
        finally:
            self._udp_waiting.release()

    def _udp_answer(self, datagram: bytes, peer, checked: int | None = None) -> bytes | None:
        if len(datagram) < m.ENVELOPE_SIZE:
            return None  # not even an envelope: nothing to answer to
        payload = datagram[m.ENVELOPE_SIZE:]
        length = int.from_bytes(datagram[16:20], "big", signed=True)
        if length < 0 or length > self.max_bytes:
            # The header arrived with the envelope here (unlike over TCP, where it is never read): signed if CT.
            op_flags = int.from_bytes(payload[8:12], "big") if len(payload) >= m.HEADER_SIZE else 0
            return _too_long(m.Envelope.decode(datagram), self.max_bytes, self.service.credential_for(op_flags))
        if datagram[2] & m.ENV_TRUNCATED or len(payload) < length:
            whole = self._reassemble(m.Envelope.decode(datagram), payload, peer)
            if whole is None:
                return None
            return self.service.answer(*whole, peer[0])
        return self.service.answer_octets(datagram, payload, peer[0], checked)

    def _reassemble(self, envelope: m.Envelope, payload: bytes, peer) -> tuple[m.Envelope, bytes] | None:
        """Collect the packets of a split request; the whole message once every packet has arrived."""
        count = -(-envelope.length // m.UDP_DATA_SIZE)
        if envelope.sequence >= count or len(payload) > m.UDP_DATA_SIZE:
            return None
        key = (peer, envelope.request_id)
        now = time.monotonic()
        with self._partial_lock:
            while self._partial and (len(self._partial) >= self.limits.max_partial_udp
                                     or now - next(iter(self._partial.values()))[0] > self.limits.read_timeout):
                self._partial.popitem(last=False)
            started, parts, first = self._partial.get(key, (now, {}, envelope))
            parts[envelope.sequence] = payload
            if len(parts) < count:
                self._partial[key] = (started, parts, first)
                return None
            self._partial.pop(key, None)
        whole = b"".join(parts[i] for i in range(count))
        return first, whole


_AT_ONCE = frozenset({m.OC_RESOLUTION, m.OC_GET_SITEINFO})


def answered_at_once(envelope_flags: int, payload: bytes) -> bool:
    """A whole, plain resolution or site-information request (by its envelope's flag octet and its payload):
    read-only and quick, answered by the thread that received it (the UDP thread, the TCP event loop).
    Anything else (or anything it cannot tell) waits for a worker thread: so does a request for a certified
    response, whose signature costs some 30 resolutions' time (a flood of them is then bounded by the
    workers and the waiting limit, and holds no plain resolution up)."""
    return (len(payload) >= 12 and not envelope_flags & (m.ENV_COMPRESSED | m.ENV_ENCRYPTED | m.ENV_TRUNCATED)
            and int.from_bytes(payload[:4], "big") in _AT_ONCE
            and not int.from_bytes(payload[8:12], "big") & m.OF_CERTIFIED)


def _socket(family: int, kind: int, host: str) -> socket.socket:
    sock = socket.socket(family, kind)
    if family == socket.AF_INET6 and host == "::":
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # one socket for both families
        except (AttributeError, OSError):
            pass
    return sock


def _too_long(envelope: m.Envelope, limit: int, credential: m.Credential | None = None) -> bytes:
    """RC_PROTOCOL_ERROR for a message whose announced length is refused, without reading it (so unsigned unless
    ``credential`` is given: over TCP the request's flags are never read)."""
    return m.unparsed_error(envelope, None, m.RC_PROTOCOL_ERROR, f"message length {envelope.length} is outside "
                            f"0..{limit}", credential=credential)


def bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A listening TCP socket and a UDP socket on the same port (with port 0, a free one for both).

    An IPv6 address (``::1``, or ``::`` for every address of both families) listens on IPv6;
    ``::`` also takes IPv4 clients (as IPv4-mapped addresses) where the system allows it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _attempt in range(20):
        tcp = _socket(family, socket.SOCK_STREAM, host)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((host, port))
        chosen = tcp.getsockname()[1]
        udp = _socket(family, socket.SOCK_DGRAM, host)
        try:
            udp.bind((host, chosen))
        except OSError:
            tcp.close()
            udp.close()
            if port:
                raise
            continue
        tcp.listen(128)
        tcp.setblocking(False)
        return tcp, udp
    raise OSError("no port free for both TCP and UDP")
