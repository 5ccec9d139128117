import pytest

from texttable import Table, tabulate

FRUIT = [["apple", 3, 0.5], ["kiwi", 12, 0.25]]


def lines(*rows):
    return "\n".join(rows)


def test_ascii_style():
    table = Table(["fruit", "qty", "price"]).add_rows(FRUIT)
    assert table.render() == lines(
        "+-------+-----+-------+",
        "| fruit | qty | price |",
        "+=======+=====+=======+",
        "| apple |   3 |  0.50 |",
        "| kiwi  |  12 |  0.25 |",
        "+-------+-----+-------+",
    )
    assert str(table) == table.render()


def test_markdown_style():
    assert tabulate(FRUIT, ["fruit", "qty", "price"], style="markdown") == lines(
        "| fruit | qty | price |",
        "|:------|----:|------:|",
        "| apple |   3 |  0.50 |",
        "| kiwi  |  12 |  0.25 |",
    )


def test_plain_style_strips_trailing_spaces():
    assert tabulate([["apple", "red"], ["kiwi", None]], ["fruit", "colour"], style="plain", missing="-") == lines(
        "fruit  colour",
        "-----  ------",
        "apple  red",
        "kiwi   -",
    )


@pytest.mark.parametrize(
    "align, expected_row",
    [
        ("left", "| ab    |"),
        ("right", "|    ab |"),
        ("center", "|  ab   |"),
        ("^", "|  ab   |"),
    ],
    ids=["left", "right", "center", "caret-shorthand"],
)
def test_explicit_alignment(align, expected_row):
    table = Table(["label"], align=align).add_row(["ab"])
    assert table.render().splitlines()[3] == expected_row


def test_alignment_by_column_name():
    table = Table(["name", "code"], align={"code": "right"}).add_rows([["a", "x1"], ["bb", "y"]])
    assert table.alignments() == ["left", "right"]
    assert table.render().splitlines()[4] == "| bb   |    y |"


def test_multiline_cells():
    table = Table(["key", "value"]).add_row(["path", "/usr/lib\n/opt/lib"])
    assert table.render().splitlines()[3:5] == [
        "| path | /usr/lib |",
        "|      | /opt/lib |",
    ]


def test_markdown_escapes_pipes():
    assert tabulate([["a|b"]], ["expr"], style="markdown").splitlines()[2] == "| a\\|b |"


def test_max_width_truncates():
    table = Table(["note"], max_width=6).add_row(["a rather long note"])
    assert table.render().splitlines()[3] == "| a rat\u2026 |"


def test_float_format():
    assert tabulate([[3.14159]], ["pi"], float_format=".3f").splitlines()[3] == "| 3.142 |"


def test_invalid_arguments():
    with pytest.raises(ValueError):
        Table([])
    with pytest.raises(ValueError):
        Table(["a"], style="fancy")
    with pytest.raises(ValueError):
        Table(["a"], align="middle")
    with pytest.raises(ValueError):
        Table(["a", "b"]).add_row([1])
