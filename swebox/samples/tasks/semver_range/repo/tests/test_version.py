import pytest

from semverkit import InvalidVersion, Version


def test_parse_release():
    version = Version.parse("1.4.2")
    assert version.release == (1, 4, 2)
    assert version.prerelease == ()
    assert not version.is_prerelease


def test_parse_prerelease_and_build():
    version = Version.parse("v2.0.0-rc.1+sha.5114f85")
    assert version.release == (2, 0, 0)
    assert version.prerelease == ("rc", 1)
    assert version.build == ("sha", "5114f85")
    assert str(version) == "2.0.0-rc.1+sha.5114f85"


@pytest.mark.parametrize(
    "text",
    ["1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-rc..1", "1.2.3-rc_1"],
)
def test_parse_rejects_invalid(text):
    with pytest.raises(InvalidVersion):
        Version.parse(text)


def test_precedence_follows_spec_example():
    # https://semver.org/#spec-item-11
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    versions = [Version.parse(text) for text in ordered]
    assert sorted(reversed(versions)) == versions


def test_build_metadata_ignored_for_equality():
    assert Version.parse("1.0.0+build.1") == Version.parse("1.0.0+build.2")
    assert len({Version.parse("1.0.0+a"), Version.parse("1.0.0")}) == 1


def test_bump():
    version = Version.parse("1.2.3")
    assert str(version.bump_major()) == "2.0.0"
    assert str(version.bump_minor()) == "1.3.0"
    assert str(version.bump_patch()) == "1.2.4"
    assert str(Version.parse("1.2.3-rc.1").bump_patch()) == "1.2.3"
