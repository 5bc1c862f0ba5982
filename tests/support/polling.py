"""Waiting for a state the system under test reaches in its own time."""

import time


def wait_for(check, seconds: float, every: float = 0.5):
    """``check()``'s first truthy value within ``seconds``, else None."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return None
