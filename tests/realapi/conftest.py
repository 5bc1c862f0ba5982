"""Real-API tier: the real apiextensions-apiserver on etcd, behind the aggregating proxy
in tests/support/realapi.py, with the kmock emulator serving core and apps.

Nothing is faked on the custom-resource path: validation (422), defaulting, pruning,
generation and the status subresource are the real server's. The binary comes from
`.ci/build-apiextensions`; without it (the Debian packages could not be downloaded, or the
build was not run) every test here is skipped with the reason, never passed.
"""

import pytest

from support.realapi import require_binary


@pytest.fixture(scope="session")
def realapi_binary():
    return require_binary()
