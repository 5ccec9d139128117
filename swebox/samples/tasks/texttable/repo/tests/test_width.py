from texttable import display_width, truncate
from texttable.width import char_width


def test_ascii_width():
    assert display_width("hello") == 5
    assert display_width("") == 0


def test_char_width():
    assert char_width("a") == 1
    assert char_width("\u754c") == 2  # CJK ideograph
    assert char_width("\u0301") == 0  # combining acute accent


def test_truncate():
    assert truncate("hello world", 8) == "hello w\u2026"
    assert truncate("short", 8) == "short"
    assert truncate("hello", 4, placeholder="..") == "he.."
