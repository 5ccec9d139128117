"""JUnit XML reports: pytest `--junitxml`, Maven Surefire's TEST-*.xml, go-junit-report,
jest-junit and the like.

Every `<testcase classname=... name=...>` under a `<testsuites>` or `<testsuite>` root
(nested suites included) gives one entry. Status from its children: `<error>` -> ERROR,
`<failure>` -> FAILED, `<skipped type="pytest.xfail">` (pytest's xfail) -> XFAIL, any other
`<skipped>` -> SKIPPED, none of these -> PASSED; pytest writes a call failure plus a teardown
error into one testcase, which gives ERROR. Surefire's `<flakyFailure>`/`<rerunFailure>` are
not outcomes and are ignored.

Test id from `parse`: `classname::name`, or `name` alone when there is no classname (pytest's
collection errors). pytest writes `tests/test_x.py::TestC::test_y[p]` as classname
`tests.test_x.TestC`, name `test_y[p]`: the id is `tests.test_x.TestC::test_y[p]`. The file
path cannot be read back from that for certain (`a/b.py` and `a.b.py` both become `a.b`, and
the split between module and class is lost), so `to_pytest_ids(mapping, known_ids)` maps ids
onto the pytest node ids a task expects: each known id is converted the way pytest converts
it, and an entry is renamed when exactly one known id converts to it; the rest keep their JUnit
ids. It also adds the whitespace-cut ids SWE-bench stores for parametrized ids with spaces (see
`align_truncated_ids`).

Only well-formed XML is accepted; malformed XML raises BadInput. Documents with a DOCTYPE or
ENTITY declaration are refused before parsing (the stdlib parser would expand entities, the
"billion laughs" attack; real reports never declare any). Control characters that XML forbids
(some producers leak them from test output) are replaced before parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.etree import ElementTree

from swebox.errors import BadInput
from swebox.grading.parsers._common import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    XFAIL,
    put_worst,
    worse,
)

_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop a `{namespace}` prefix


def _status(case: ElementTree.Element) -> str:
    status = PASSED
    for child in case:
        tag = _local(child.tag)
        if tag == "error":
            status = worse(status, ERROR)
        elif tag == "failure":
            status = worse(status, FAILED)
        elif tag == "skipped":
            xfail = child.get("type") == "pytest.xfail"
            status = worse(status, XFAIL if xfail else SKIPPED)
    return status


def parse(text: str) -> dict[str, str]:
    """`{classname::name: status}` from a JUnit XML document."""
    if not text.strip():
        return {}
    if _DECLARATION.search(text):
        raise BadInput("JUnit XML with a DOCTYPE or ENTITY declaration refused "
                       "(entity expansion is unsafe; real reports declare none)")
    text = _ILLEGAL.sub("?", text)
    # An encoding declaration means nothing once the text is decoded; expat rejects some.
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text.lstrip("\ufeff"))
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as e:
        raise BadInput(f"malformed JUnit XML: {e}") from None
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise BadInput(f"not a JUnit XML report: root element <{_local(root.tag)}>, "
                       "expected <testsuites> or <testsuite>")
    out: dict[str, str] = {}
    for case in root.iter():
        if _local(case.tag) != "testcase":
            continue
        name, cls = case.get("name", ""), case.get("classname", "")
        put_worst(out, f"{cls}::{name}" if cls else name, _status(case))
    return out


def pytest_junit_id(node_id: str) -> str:
    """The id `parse` gives for the test pytest calls `node_id` (its junitxml naming)."""
    # As pytest's junitxml mangle_test_address: parameters are set aside first, so "::" or
    # "/" inside them is kept.
    path, bracket, params = node_id.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    cls, name = ".".join(names[:-1]), names[-1]
    return f"{cls}::{name}" if cls else name


def to_pytest_ids(mapping: dict[str, str], known_ids: Iterable[str]) -> dict[str, str]:
    """`mapping` (from `parse` on a pytest report) keyed by the expected pytest node ids."""
    known = set(known_ids)
    by_junit: dict[str, list[str]] = {}
    for node_id in known:
        by_junit.setdefault(pytest_junit_id(node_id), []).append(node_id)
    out: dict[str, str] = {}
    for junit_id, status in mapping.items():
        targets = by_junit.get(junit_id, [])
        put_worst(out, targets[0] if len(targets) == 1 else junit_id, status)
    # SWE-bench's cut ids (`t.py::test[select` for `t.py::test[select a]`): cutting happens
    # inside the parameters, which the conversion leaves alone, so cut and convert commute.
    cut: dict[str, str] = {}
    for junit_id, status in mapping.items():
        parts = junit_id.split()
        if parts and parts[0] != junit_id:
            put_worst(cut, parts[0], status)
    for node_id in known - set(out):
        targets = by_junit[pytest_junit_id(node_id)]
        worst = cut.get(pytest_junit_id(node_id))
        if worst is not None and len(targets) == 1:
            out[node_id] = worst
    return out
