import pytest

from semverkit import InvalidRange, Range, Version, max_satisfying, satisfies


@pytest.mark.parametrize(
    "version, range_text, expected",
    [
        pytest.param("1.2.3", ">=1.2.0 <2.0.0", True, id="intersection-inside"),
        pytest.param("2.0.0", ">=1.2.0 <2.0.0", False, id="intersection-upper-bound"),
        pytest.param("1.9.0", "^1.2.3", True, id="caret-major"),
        pytest.param("0.2.9", "^0.2.3", True, id="caret-zero-major"),
        pytest.param("0.3.0", "^0.2.3", False, id="caret-zero-major-upper"),
        pytest.param("0.0.4", "^0.0.3", False, id="caret-zero-minor-upper"),
        pytest.param("1.2.9", "~1.2.3", True, id="tilde"),
        pytest.param("1.3.0", "~1.2.3", False, id="tilde-upper"),
        pytest.param("3.1.4", "<1.0.0 || >=3.0.0", True, id="union"),
        pytest.param("5.0.0", "*", True, id="star"),
    ],
)
def test_satisfies(version, range_text, expected):
    assert satisfies(version, range_text) is expected


def test_prerelease_needs_matching_comparator():
    assert not satisfies("2.0.0-rc.1", "^1.0.0")
    assert not satisfies("1.3.0-beta.1", ">=1.2.0")
    assert satisfies("1.2.0-beta.2", ">=1.2.0-beta.1")
    assert satisfies("1.3.0-beta.1", ">=1.2.0", include_prerelease=True)


def test_max_satisfying():
    versions = ["1.2.0", "1.9.3", "2.0.0", "1.10.0-rc.1"]
    assert max_satisfying(versions, "^1.2.0") == Version.parse("1.9.3")
    assert max_satisfying(versions, ">=3.0.0") is None


def test_range_str_is_normalised():
    assert str(Range("^1.2.3 || ~0.4.1")) == ">=1.2.3 <2.0.0 || >=0.4.1 <0.5.0"
    assert str(Range(">= 1.0.0")) == ">=1.0.0"


def test_invalid_range():
    with pytest.raises(InvalidRange):
        Range(">=1.0.0 <")


@pytest.mark.xfail(reason="partial versions such as '^1.2' are not supported yet (#17)")
def test_partial_versions():
    assert satisfies("1.2.5", "^1.2")
