"""The providers' HTTP client tells "never sent" from "sent, no answer": that line is what keeps
an interrupted send from going out twice. Real sockets on loopback, no sleeping: the server
side answers at once, drops the connection, or is not there."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from plugins.channels.http_form import FormClient, NoAnswer, NotSent

RESPONSE = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n"
    b'{"sid": "SM1"}'
)


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """A one-connection server whose behaviour the test gives; yields a starter."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(behave: Callable[[socket.socket], None]) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listeners.append(listener)

        def run() -> None:
            connection, _ = listener.accept()
            with connection:
                behave(connection)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    for thread in threads:
        thread.join(timeout=5)
    for listener in listeners:
        listener.close()


def read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += connection.recv(4096)
    return head + b"\r\n\r\n" + body


def test_an_answer(server: Callable[..., int]) -> None:
    seen: list[bytes] = []

    def answer(connection: socket.socket) -> None:
        seen.append(read_request(connection))
        connection.sendall(RESPONSE)

    port = server(answer)
    client = FormClient(f"http://127.0.0.1:{port}/api", 2, 2, auth=("AC1", "secret"))
    reply = client.post_form("/Messages.json", {"To": "+12025550101", "Body": "a b&c"})
    client.close()
    assert (reply.status, reply.json()) == (201, {"sid": "SM1"})
    request = seen[0]
    assert request.startswith(b"POST /api/Messages.json HTTP/1.1")
    assert b"Authorization: Basic QUMxOnNlY3JldA==" in request  # AC1:secret
    assert request.endswith(b"To=%2B12025550101&Body=a+b%26c")


def test_nobody_listening_is_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = FormClient(f"http://127.0.0.1:{port}", 2, 2)
    with pytest.raises(NotSent):
        client.post_form("/x", {"a": "1"})


def test_a_dropped_connection_after_the_request_is_no_answer(server: Callable[..., int]) -> None:
    def drop(connection: socket.socket) -> None:
        read_request(connection)  # the provider got it, then the line went dead

    port = server(drop)
    client = FormClient(f"http://127.0.0.1:{port}", 2, 2)
    with pytest.raises(NoAnswer):
        client.post_form("/x", {"a": "1"})
    client.close()


def test_a_half_answer_is_no_answer(server: Callable[..., int]) -> None:
    def half(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(RESPONSE[:-5])  # the headers and part of the body

    port = server(half)
    client = FormClient(f"http://127.0.0.1:{port}", 2, 2)
    with pytest.raises(NoAnswer):
        client.post_form("/x", {"a": "1"})
    client.close()


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not an http"):
        FormClient("ftp://example.test", 1, 1)
