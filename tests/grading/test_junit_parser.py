"""JUnit XML: live pytest reports checked against the pytest text parser through
`to_pytest_ids`, other producers' reports, and hostile or malformed XML."""

from __future__ import annotations

import subprocess
import sys

import pytest

from swebox.errors import BadInput
from swebox.grading.parsers import junit, parse_log

TESTS = '''\
import pytest


@pytest.fixture
def broken():
    raise RuntimeError("setup boom")


@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown boom")


def test_ok():
    print("PASSED tests/sub/test_demo.py::test_fail")


def test_fail():
    assert 1 == 2


def test_error(broken):
    pass


def test_fail_then_teardown(bad_teardown):
    assert False


@pytest.mark.skip(reason="not today")
def test_skip():
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    pass


@pytest.mark.parametrize("v", ["a b", "x - y", "[z]", "select * from t", "p::q/r"])
def test_param(v):
    assert v != "x - y"


class TestOuter:
    def test_m(self):
        pass

    class TestInner:
        def test_n(self):
            assert 0
'''


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A real pytest run: its `-rA -v` text log and its `--junitxml` report."""
    root = tmp_path_factory.mktemp("live")
    (root / "tests" / "sub").mkdir(parents=True)
    (root / "tests" / "sub" / "test_demo.py").write_text(TESTS)
    (root / "tests" / "test_broken.py").write_text("import nonexistent_module_xyz\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-v", "-p", "no:cacheprovider",
                          "--continue-on-collection-errors", "--junitxml=report.xml", "tests"],
                         cwd=root, capture_output=True)
    return out.stdout, (root / "report.xml").read_bytes()


def test_live_report_statuses(live: tuple[bytes, bytes]) -> None:
    got = parse_log("junit", live[1])
    mod = "tests.sub.test_demo"
    assert got == {
        f"{mod}::test_ok": "PASSED", f"{mod}::test_fail": "FAILED",
        f"{mod}::test_error": "ERROR", f"{mod}::test_fail_then_teardown": "ERROR",
        f"{mod}::test_skip": "SKIPPED", f"{mod}::test_xfail": "XFAIL",
        f"{mod}::test_xpass": "PASSED", f"{mod}::test_param[a b]": "PASSED",
        f"{mod}::test_param[x - y]": "FAILED", f"{mod}::test_param[[z]]": "PASSED",
        f"{mod}::test_param[select * from t]": "PASSED", f"{mod}::test_param[p::q/r]": "PASSED",
        f"{mod}.TestOuter::test_m": "PASSED", f"{mod}.TestOuter.TestInner::test_n": "FAILED",
        "tests.test_broken": "ERROR"}


def test_live_report_agrees_with_the_text_log(live: tuple[bytes, bytes]) -> None:
    text = parse_log("pytest", live[0])
    assert len(text) == 15 and "tests/test_broken.py" in text
    assert junit.to_pytest_ids(parse_log("junit", live[1]), set(text)) == text


def test_to_pytest_ids_maps_onto_cut_swebench_ids(live: tuple[bytes, bytes]) -> None:
    base = "tests/sub/test_demo.py::test_param"
    known = {f"{base}[a", f"{base}[select", f"{base}[x", "tests/sub/test_demo.py::test_ok"}
    got = junit.to_pytest_ids(parse_log("junit", live[1]), known)
    assert got[f"{base}[a"] == "PASSED" and got[f"{base}[select"] == "PASSED"
    assert got[f"{base}[x"] == "FAILED"
    assert got["tests/sub/test_demo.py::test_ok"] == "PASSED"
    # Ids nobody expected keep their JUnit form.
    assert got["tests.sub.test_demo::test_fail"] == "FAILED"


def test_to_pytest_ids_leaves_ambiguous_ids_alone() -> None:
    mapping = {"a.b::test_x": "PASSED", "a.b.C::test_y": "FAILED"}
    known = {"a/b.py::test_x", "a.b.py::test_x", "a/b.py::C::test_y"}
    assert junit.to_pytest_ids(mapping, known) == {"a.b::test_x": "PASSED",
                                                   "a/b.py::C::test_y": "FAILED"}


def test_pytest_junit_id_follows_pytest() -> None:
    assert junit.pytest_junit_id("tests/test_x.py::TestC::test_y[p/q::r]") == \
        "tests.test_x.TestC::test_y[p/q::r]"
    assert junit.pytest_junit_id("tests/test_x.py") == "tests.test_x"


# Maven Surefire 3.2.5's TEST-com.x.FooTest.xml (stack traces trimmed).
SUREFIRE = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="https://maven.apache.org/surefire/maven-surefire-plugin/xsd/\
surefire-test-report-3.0.xsd" version="3.0" name="com.x.FooTest" time="0.035" tests="4" \
errors="1" skipped="1" failures="1">
  <properties>
  </properties>
  <testcase name="testBar" classname="com.x.FooTest" time="0.015">
    <failure message="expected two ==&gt; expected: &lt;2&gt; but was: &lt;3&gt;" \
type="org.opentest4j.AssertionFailedError"><![CDATA[org.opentest4j.AssertionFailedError: \
expected two ==> expected: <2> but was: <3>
	at com.x.FooTest.testBar(FooTest.java:6)
]]></failure>
  </testcase>
  <testcase name="testBoom" classname="com.x.FooTest" time="0.003">
    <error message="boom" type="java.lang.IllegalStateException"><![CDATA[boom]]></error>
  </testcase>
  <testcase name="testOk" classname="com.x.FooTest" time="0.001"/>
  <testcase name="testSkipped" classname="com.x.FooTest" time="0.0">
    <skipped message="later"/>
  </testcase>
  <testcase name="testFlaky" classname="com.x.FooTest" time="0.0">
    <flakyFailure message="once" type="java.lang.AssertionError"/>
  </testcase>
</testsuite>
""".replace("\\\n", "")


def test_surefire_report() -> None:
    assert parse_log("junit", SUREFIRE) == {
        "com.x.FooTest::testBar": "FAILED", "com.x.FooTest::testBoom": "ERROR",
        "com.x.FooTest::testOk": "PASSED", "com.x.FooTest::testSkipped": "SKIPPED",
        "com.x.FooTest::testFlaky": "PASSED"}


def test_go_junit_report_and_jest_junit() -> None:
    go = ('<testsuites tests="2"><testsuite name="example.com/m" tests="2">'
          '<testcase classname="example.com/m" name="TestA/sub_one" time="0.0"></testcase>'
          '<testcase classname="example.com/m" name="TestB" time="0.0">'
          '<skipped message="not on CI"></skipped></testcase></testsuite></testsuites>')
    assert parse_log("junit", go) == {"example.com/m::TestA/sub_one": "PASSED",
                                      "example.com/m::TestB": "SKIPPED"}
    jest = ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="jest tests">'
            '<testsuite name="Math"><testcase classname="Math adds" name="Math adds"/>'
            '<testcase classname="Math fails" name="Math fails"><failure>Error: x</failure>'
            '</testcase></testsuite></testsuites>')
    assert parse_log("junit", jest) == {"Math adds::Math adds": "PASSED",
                                        "Math fails::Math fails": "FAILED"}


def test_namespaces_nesting_and_control_characters() -> None:
    xml = ('<r:testsuites xmlns:r="urn:x"><r:testsuite><r:testsuite>'
           '<r:testcase classname="c" name="t\x01"><r:error/></r:testcase>'
           '</r:testsuite></r:testsuite></r:testsuites>')
    assert parse_log("junit", xml) == {"c::t?": "ERROR"}
    latin1 = '<?xml version="1.0" encoding="ISO-8859-1"?><testsuite><testcase name="\xe9"/>' \
             "</testsuite>"
    assert parse_log("junit", latin1.encode("latin-1")) == {"\ufffd": "PASSED"}


@pytest.mark.parametrize("xml", [
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    "<testsuite><testcase name='&lol2;'/></testsuite>",
    '<!doctype testsuite SYSTEM "file:///etc/passwd"><testsuite/>',
    "<testsuite><!ENTITY x 'y'></testsuite>",
])
def test_entity_declarations_are_refused(xml: str) -> None:
    with pytest.raises(BadInput, match="DOCTYPE or ENTITY"):
        parse_log("junit", xml)


@pytest.mark.parametrize("xml", [
    "<testsuite><testcase name='a'>",
    "<testsuite/><testsuite/>",  # two roots: concatenated reports are not accepted
    "PASSED t.py::test_a",
    b"\xff\xfe<\x00t\x00",
])
def test_malformed_xml_is_bad_input(xml: str | bytes) -> None:
    with pytest.raises(BadInput) as e:
        parse_log("junit", xml)
    assert "\n" not in str(e.value) and "malformed JUnit XML" in str(e.value)


def test_other_xml_is_not_a_report() -> None:
    with pytest.raises(BadInput, match="root element <html>"):
        parse_log("junit", "<html><body/></html>")
