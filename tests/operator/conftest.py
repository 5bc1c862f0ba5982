"""Operator unit fixtures.

Nothing of our own is faked. The Prometheus client is tested over real HTTP against a
loopback server that replays recorded answers of the Prometheus HTTP API (including
failures a real server gives: 500s, timeouts, NaN), because a real Prometheus cannot be
made to misbehave on cue; the integration tier uses the real server.
"""

import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from ala_operator.devstack.loopback import QuietHandler





class Recorded:
    """Answers served in order per path; each is (status, body) or ("sleep", seconds)."""

    def __init__(self):
        self.answers: dict[str, list] = {}
        self.requests: list[tuple[str, dict]] = []


@pytest.fixture
def prom():
    recorded = Recorded()

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            path = self.path.split("?")[0]
            recorded.requests.append((self.path, dict(self.headers)))
            queue = recorded.answers.get(path) or [(404, {"status": "error", "error": "no answer"})]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            if answer[0] == "sleep":
                time.sleep(answer[1])
                answer = (200, {"status": "success", "data": {"resultType": "vector", "result": []}})
            self.reply(*answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield recorded
    server.shutdown()
    server.server_close()
