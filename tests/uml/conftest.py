"""pytest glue for the UML harness: registers the ``uml`` marker, skips UML tests when the
machine cannot run guests, and provides a ``wire`` fixture."""
import sys

import pytest

from lflab import harness, netlab

sys.path.insert(0, netlab.ensure_collection_path())  # the tests read the collection's constants


def pytest_configure(config):
    config.addinivalue_line("markers", "uml: boots User-Mode Linux guests (root, slow)")


def pytest_collection_modifyitems(config, items):
    reason = harness.uml_unavailable_reason()
    if reason:
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if "uml" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def uml_image():
    harness.cleanup_stale()
    return harness.ensure_image()


@pytest.fixture
def wire(uml_image):
    with harness.Wire(image=uml_image) as w:
        yield w
