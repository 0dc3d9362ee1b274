"""Fixtures for the evaluation tests."""

import pytest

from tests.generation.helpers import single_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with single_torch_thread():
        yield
