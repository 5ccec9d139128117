import io

import pytest

import tinyini
from tinyini import Config, NoOptionError, NoSectionError

SAMPLE = """\
[DEFAULT]
timeout = 30

[server]
host = example.org
port = 8443
debug = off
tags = web, edge,
    primary

[worker]
concurrency = 4
timeout = 120
"""


@pytest.fixture
def config():
    return tinyini.loads(SAMPLE, source="sample.ini")


def test_typed_getters(config):
    assert config.get("server", "host") == "example.org"
    assert config.getint("server", "port") == 8443
    assert config.getboolean("server", "debug") is False
    assert config.getfloat("worker", "concurrency") == 4.0
    assert config.getlist("server", "tags") == ["web", "edge", "primary"]


def test_file_defaults_apply_to_every_section(config):
    assert config.getint("server", "timeout") == 30
    assert config.getint("worker", "timeout") == 120
    assert config.items("server")["timeout"] == "30"
    assert "timeout" not in config.items("server", include_defaults=False)


def test_keys_are_case_insensitive(config):
    assert config.get("server", "HOST") == "example.org"


def test_missing_values(config):
    with pytest.raises(NoSectionError):
        config.get("nope", "host")
    with pytest.raises(NoOptionError):
        config.get("worker", "host")
    assert config.get("worker", "host", fallback="localhost") == "localhost"
    assert config.getint("worker", "port", fallback=None) is None


def test_load_from_file_object():
    fp = io.StringIO("[db]\nurl = sqlite:///:memory:\n")
    config = tinyini.load(fp)
    assert config.sections() == ["db"]
    assert config.get("db", "url") == "sqlite:///:memory:"


def test_dumps_round_trip(config):
    config.set("worker", "label", "  spaced # out ")
    text = tinyini.dumps(config)
    assert text.startswith("[DEFAULT]\ntimeout = 30\n\n[server]\n")
    assert tinyini.loads(text).to_dict() == config.to_dict()


def test_build_config_programmatically():
    config = Config()
    config.add_section("app")
    config.set("app", "Workers", 8)
    assert config.getint("app", "workers") == 8
    assert "app" in config and list(config) == ["app"]
