"""Test tiers, for every test folder (core and both integrations).

``make test`` runs everything, as CI does. ``make test-fast`` (``pytest -m "not slow"``) leaves
out every test that runs the real embedded model: a test is slow when it uses the ``embedded``
fixture or is marked ``@pytest.mark.slow``. The fast tier guards itself: loading the real model
there is an error that names the test, so a test cannot slip into the fast tier by building a
default component (which loads the shared model) without saying so.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "embedded" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tier_loads_no_model(request, monkeypatch):
    markexpr = request.config.getoption("markexpr", "") or ""
    if "not slow" not in markexpr.replace("  ", " "):
        yield
        return
    import entropy_retriever.models as models

    real = models._load

    def guarded(source, *args):
        from pathlib import Path

        if Path(str(source)).name == models.EMBEDDED_MODEL:
            raise AssertionError(
                f"{request.node.nodeid} loads the real embedded model in the fast tier: "
                "use the tiny models of tests/conftest.py, or mark it @pytest.mark.slow"
            )
        return real(source, *args)

    monkeypatch.setattr(models, "_load", guarded)
    yield
