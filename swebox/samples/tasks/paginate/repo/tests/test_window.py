import pytest

from pagekit import Paginator, page_window


def test_window_in_the_middle():
    assert page_window(10, 20) == [1, None, 8, 9, 10, 11, 12, None, 20]


def test_window_near_the_start():
    assert page_window(2, 20) == [1, 2, 3, 4, None, 20]


def test_single_hidden_page_is_shown():
    # 1 ... 3 would hide only page 2, so show it instead of an ellipsis
    assert page_window(5, 9) == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_window_without_edges():
    assert page_window(10, 20, radius=1, edges=0) == [None, 9, 10, 11, None]


def test_window_validates_current_page():
    with pytest.raises(ValueError):
        page_window(0, 5)
    assert page_window(1, 0) == []


def test_paginator_window():
    paginator = Paginator(list(range(95)), 10)
    assert paginator.window(5, radius=1) == [1, None, 4, 5, 6, None, 10]
