"""Test specs: how each task's tests run, decided in one place (see `resolve`)."""

from swebox.tasks.specs.model import TestRule, TestSpec
from swebox.tasks.specs.resolve import parser_name, resolve_spec
from swebox.tasks.specs.tables import directives_from_patch

__all__ = ["TestRule", "TestSpec", "directives_from_patch", "parser_name", "resolve_spec"]
