"""The seed's multi-process HTTP server (example 6), with options and a self-test.

    python examples/http_server.py                  # serve on http://127.0.0.1:8080/
    python examples/http_server.py --self-test 2000 # serve, fire 2000 requests at itself

Several processes (greenlets on one loop) each accept on their own copy of one listener;
each answers "Hello, HTTP!" and closes. Unlike the seed, each process reads the request
head before answering: closing a socket with unread request bytes makes the kernel send
a reset, which a client may see before it has read the answer.
"""

from __future__ import annotations

import argparse
import sys
import time

from facade import process
from facade.socket import TcpListener, TcpStream

REPLY = "Hello, HTTP!"
RESPONSE = (
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    f"Content-Length: {len(REPLY)}\r\nConnection: close\r\n\r\n{REPLY}"
)
MAX_HEAD = 16384


def read_head(client: TcpStream) -> bytes:
    """The request head (up to the blank line), or what came before the peer stopped."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
        chunk = client.read(4096)
        if not chunk:
            break
        head += chunk
    return head


def serve() -> None:
    listener = process.receive()  # this process's copy of the listener
    while True:
        client = listener.accept()
        try:
            read_head(client)
            client.write_string(RESPONSE)
            client.shutdown()
        except OSError as exc:  # one client's failure must not stop the server
            print(f"connection failed: {exc!r}", file=sys.stderr)
        finally:
            client.close()


def fetch(host: str, port: int, count: int) -> int:
    """Make `count` requests one after another; return how many got the right answer."""
    request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    good = 0
    for _ in range(count):
        with TcpStream(host, port) as stream:
            stream.write_string(request)
            answer = stream.read_all()
        good += answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(REPLY.encode())
    return good


def self_test(host: str, port: int, total: int, concurrency: int) -> int:
    """Fire `total` requests from `concurrency` client processes; print the tally."""
    clients = max(1, min(concurrency, total))
    shares = [total // clients + (i < total % clients) for i in range(clients)]
    started = time.perf_counter()
    procs = [process.spawn(fetch, host, port, share) for share in shares if share]
    good = sum(proc.join(timeout=300) for proc in procs)
    elapsed = time.perf_counter() - started
    failed = total - good
    print(
        f"self-test: {total} requests, {good} ok, {failed} failed, "
        f"{elapsed:.2f} s, {total / elapsed:,.0f} requests/s"
    )
    return 0 if failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, help="port (default 8080; 0 = any free port)")
    parser.add_argument("--processes", type=int, default=4, help="accepting processes")
    parser.add_argument("--self-test", type=int, metavar="N", help="fire N requests, then exit")
    parser.add_argument("--concurrency", type=int, default=50, help="self-test client processes")
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else (0 if args.self_test else 8080)

    listener = TcpListener(ip=args.host, port=port)
    for _ in range(args.processes):
        process.spawn(serve).send(listener)
    address = listener.local_address
    if args.self_test is not None:
        return self_test(str(address.ip), address.port, args.self_test, args.concurrency)
    print(f"serving on http://{address}/ with {args.processes} processes", flush=True)
    print(f"try: curl http://{address}/   (Ctrl-C stops)", flush=True)
    try:
        process.receive()  # keeps the program running
    except KeyboardInterrupt:
        print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
