"""The development stack: everything that stands in for a cluster so the operator can be
run, measured and tested on one machine. A Kubernetes API emulator (``emulator``), a
simulated engine fleet exporting real engines' metrics (``fleet``), the local stack that
starts them with a real Prometheus and the operator (``localstack``, ``demo``), trace
replay against scaling policies (``replay``, ``replay_report``) and the reconcile
benchmarks (``bench``).

The operator itself (``ala-operator run``) imports none of this; it needs the ``devstack``
extra (kmock, jsonpatch), which the production image does not install.
"""
