"""The examples in the docstrings of the installed package run and give what they say.

They are collected by import name (``align3d.engine...``), not from the source folders, so that
each module is loaded once, under the one name the package gives it.
"""

import doctest
import importlib

import pytest

MODULES_WITH_EXAMPLES = (
    "align3d.engine.alignment.fsc",
    "align3d.engine.alignment.rotation_function",
)


@pytest.mark.parametrize("name", MODULES_WITH_EXAMPLES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), verbose=False)
    assert result.attempted > 0, f"{name} has no examples left: drop it from the list"
    assert result.failed == 0
