"""Seed example 3: Unix socket ping (facade).

The socket file stays, as in Inko: remove it yourself before running again. A path may
be given as the first argument instead of /tmp/test.sock.
"""

import sys

from facade.unix import UnixListener, UnixStream

path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/test.sock"
listener = UnixListener(path)
stream = UnixStream(path)
stream.write_string("ping")
connection = listener.accept()
print(connection.read_string(4))
# the socket file stays; remove it yourself before running again
