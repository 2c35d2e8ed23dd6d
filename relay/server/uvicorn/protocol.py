"""uvicorn's httptools protocol with the limits it lacks: request-head size, header count, and
deadlines for a request head, and then its body, to arrive.

Measured on uvicorn 0.54 + httptools: a 10 MB header and 100,000 headers were both accepted
(buffered in full), a connection that never sends a byte was held forever, and so was one that
sent a whole head with `Content-Length: 100000` and then one body byte; so a handful of clients,
with no credential, could exhaust a node's memory or file descriptors. Beyond a limit the client
gets 431 (or 408 for a deadline) with a JSON body, and the connection is closed.

The limits are each connection's own, given when it is made: `bounded(limits)` is what uvicorn's
`http=` option takes, and nothing process-wide is changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from relay.wire import codec, http


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """What a request head may be: relay.config.Settings' max_head_bytes, max_headers, head_timeout."""

    max_head_bytes: int  # request line + headers; LaunchDarkly's browser SDK puts the context here
    max_headers: int
    head_timeout: float  # seconds for a request head to arrive, on a new or kept-alive connection
    body_timeout: float = 10.0  # seconds for a request's body to arrive in full once its head has


def _reply(status: int, code: str, message: str) -> bytes:
    body = codec.dumps({"code": code, "message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    return http.head(status, headers) + body


_LINGER = 2.0  # seconds a refused connection is drained before it is closed


class _Refused(Exception):
    pass


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol for one connection, held to `limits`."""

    def __init__(self, *args: Any, limits: HeadLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = limits.max_head_bytes
        self.max_headers = limits.max_headers
        self.head_timeout = limits.head_timeout
        self.body_timeout = limits.body_timeout
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._awaiting_head = False  # between the deadline's start and the head's end
        self._head_since = 0.0  # loop time the awaited head's deadline started
        self._refused = False
        self._body_pending = False  # the current request's head is in, its body not all yet
        self._answered_early = False  # its response went out before that body had all arrived
        self._body_deadline: asyncio.TimerHandle | None = None
        self._awaiting_body = False  # between the body deadline's start and the body's end
        self._body_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering after a refusal: read and drop the rest (see _refuse)
            return
        counting = self._in_head
        super().data_received(data)
        if counting and self._in_head and self.parser is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, f"request head over {self.max_head_bytes} bytes")
        # A body still to come after what this read brought (a request without one, or whose body
        # came with its head, completes within the read and costs no timer).
        if self._body_pending and not self._awaiting_body and not self._refused:
            self._arm_body_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refuse(431, f"more than {self.max_headers} headers")
            raise _Refused  # stops the parser; uvicorn's own 400 is then skipped (send_400_response)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._awaiting_head = False  # (the deadline's timer, if pending, finds nothing to do)
        self._body_pending = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_pending = False
        self._awaiting_body = False  # (the body deadline's timer, if pending, finds nothing to do)
        if self._answered_early:  # the rest of the body is in: what comes now is the next head
            self._answered_early = False
            self._await_next_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._body_pending:
            # Answered before the body had all arrived (a 413, say): the rest of the body, which
            # the parser still reads and drops, is not the next head and must not count as one.
            self._answered_early = True
            return
        self._await_next_head()

    def _await_next_head(self) -> None:
        if not self.transport.is_closing():  # kept alive: the next head has the same deadline
            self._in_head = True
            self._head_bytes = 0
            self._arm_deadline()

    def _arm_deadline(self) -> None:
        """The head awaited from now must arrive within head_timeout. One timer per connection,
        re-armed only when it fires early: arming and cancelling a timer per request cost 2.5 us."""
        self._awaiting_head = True
        self._head_since = self.loop.time()
        if self._head_deadline is None and self.head_timeout > 0:
            self._head_deadline = self.loop.call_at(self._head_since + self.head_timeout, self._head_check)

    def _disarm_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_check(self) -> None:
        self._head_deadline = None
        if not self._awaiting_head or self.transport.is_closing():
            return  # a request is being answered (a stream, say); the next wait arms the timer again
        due = self._head_since + self.head_timeout
        if self.loop.time() < due:  # this wait began after the timer was armed
            self._head_deadline = self.loop.call_at(due, self._head_check)
            return
        self._head_timed_out()

    def _arm_body_deadline(self) -> None:
        """The body now awaited must be all in within body_timeout; one timer per connection, as
        for the head."""
        self._awaiting_body = True
        self._body_since = self.loop.time()
        if self._body_deadline is None and self.body_timeout > 0:
            self._body_deadline = self.loop.call_at(self._body_since + self.body_timeout, self._body_check)

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_check(self) -> None:
        self._body_deadline = None
        if not self._awaiting_body or self.transport.is_closing():
            return
        due = self._body_since + self.body_timeout
        if self.loop.time() < due:  # this wait began after the timer was armed
            self._body_deadline = self.loop.call_at(due, self._body_check)
            return
        self._body_timed_out()

    def _body_timed_out(self) -> None:
        message = f"no complete request body within {self.body_timeout:g} s"
        cycle = self.cycle
        if cycle is not None and cycle.response_started:  # answered already (a 413, say): just close
            self.logger.info("closed a connection from %s: %s", self.client and self.client[0], message)
            self._refused = True
            self.transport.close()
            return
        self._refuse(408, message)
        if cycle is not None:  # the app waiting for the body hears the client is gone: it answers no more
            cycle.disconnected = True
            cycle.message_event.set()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # else this class has answered already
            super().send_400_response(msg)

    def _head_timed_out(self) -> None:
        if self._head_bytes:  # a request had begun: say why
            self._refuse(408, f"no complete request head within {self.head_timeout:g} s")
        else:  # an idle connection: close it quietly
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._in_head = False
        self._awaiting_body = False
        self._disarm_deadline()
        self._disarm_body_deadline()
        self.logger.info("refused a request from %s: %s", self.client and self.client[0], message)
        code = "request_timeout" if status == 408 else "headers_too_large"
        self.transport.write(_reply(status, code, message))
        # Closing with the client's bytes unread would reset the connection, and the client might
        # never see the answer: half-close instead, drop what still comes, and close a little later.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER, self.transport.close)
        else:
            self.transport.close()


def bounded(limits: HeadLimits) -> Callable[..., BoundedHttpTools]:
    """What uvicorn's `http=` takes (it calls it for each connection): the protocol with `limits`.

    A partial of the module's class rather than a class made here: with `--workers N`, uvicorn
    pickles its config for each worker process, and a class made at run time does not pickle."""
    return partial(BoundedHttpTools, limits=limits)
