import pytest

from tinyini import ParseError, loads
from tinyini.parser import clean_value, parse


def test_sections_and_options():
    sections, file_defaults = parse("[server]\nhost = example.org\nPort: 8443\n\n[client]\nname=cli\n")
    assert sections == {"server": {"host": "example.org", "port": "8443"}, "client": {"name": "cli"}}
    assert file_defaults == {}


def test_comments_and_blank_lines_are_ignored():
    text = "# leading comment\n; another\n[a]\n\nkey = value ; trailing\nother = x # note\n"
    sections, _ = parse(text)
    assert sections == {"a": {"key": "value", "other": "x"}}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("plain", "plain"),
        ("  padded  ", "padded"),
        ("http://host/#anchor", "http://host/#anchor"),
        ("value # comment", "value"),
        ('"  keep # this "', "  keep # this "),
        ("'single' ; note", "single"),
    ],
    ids=["plain", "padded", "hash-in-url", "inline-comment", "double-quoted", "single-quoted"],
)
def test_clean_value(raw, expected):
    assert clean_value(raw) == expected


def test_continuation_lines():
    sections, _ = parse("[paths]\nsearch =\n    /usr/lib\n    /opt/lib\nname = x\n")
    assert sections["paths"] == {"search": "/usr/lib\n/opt/lib", "name": "x"}


def test_default_section_is_returned_separately():
    sections, file_defaults = parse("[DEFAULT]\nlevel = info\n[app]\nname = demo\n")
    assert sections == {"app": {"name": "demo"}}
    assert file_defaults == {"level": "info"}


def test_errors_report_line_numbers():
    with pytest.raises(ParseError) as excinfo:
        loads("[a]\nkey = 1\nthis is not valid\n", source="app.ini")
    assert excinfo.value.lineno == 3
    assert str(excinfo.value).startswith("app.ini, line 3:")


def test_option_outside_section_and_duplicate_section():
    with pytest.raises(ParseError, match="outside"):
        parse("key = value\n")
    with pytest.raises(ParseError, match="duplicate"):
        parse("[a]\n[a]\n")
