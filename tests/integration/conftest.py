"""Integration tier: the real kopf operator (``app.run``) against the Kubernetes API
emulator over real HTTP and a real Prometheus server scraping the simulated fleet.

Nothing of ours is faked. The fleet stands in for GPUs: its replicas follow a real
measured curve from the bundled data, held out of the model the operator starts from.
Prometheus comes from Debian's package (``.ci/run`` installs it); without it these tests
are skipped with the install hint, never passed.
"""

# The fixtures (require_prometheus, held_out) live in tests/conftest.py: the faults tier uses them too.
