import pytest

from pagekit import EmptyPage, PageNotAnInteger, Paginator


def make(count, per_page, **kwargs):
    return Paginator(list(range(1, count + 1)), per_page, **kwargs)


def test_basic_pages():
    paginator = make(23, 10)
    assert paginator.count == 23
    assert paginator.num_pages == 3
    assert list(paginator.page_range) == [1, 2, 3]
    assert list(paginator.page(1)) == list(range(1, 11))
    assert list(paginator.page(3)) == [21, 22, 23]


def test_page_navigation():
    paginator = make(23, 10)
    first, middle, last = paginator.page(1), paginator.page(2), paginator.page(3)
    assert first.has_next() and not first.has_previous()
    assert middle.has_next() and middle.has_previous()
    assert not last.has_next() and last.has_previous()
    assert middle.next_page_number() == 3
    assert middle.previous_page_number() == 1
    with pytest.raises(EmptyPage):
        last.next_page_number()


def test_start_and_end_index():
    paginator = make(23, 10)
    assert (paginator.page(1).start_index(), paginator.page(1).end_index()) == (1, 10)
    assert (paginator.page(3).start_index(), paginator.page(3).end_index()) == (21, 23)


def test_orphans_are_merged_into_previous_page():
    paginator = make(22, 10, orphans=3)
    assert paginator.num_pages == 2
    assert list(paginator.page(2)) == list(range(11, 23))
    assert paginator.page(2).end_index() == 22


def test_empty_sequence():
    paginator = make(0, 10)
    assert paginator.num_pages == 1
    page = paginator.page(1)
    assert len(page) == 0
    assert (page.start_index(), page.end_index()) == (0, 0)
    assert make(0, 10, allow_empty_first_page=False).num_pages == 0


@pytest.mark.parametrize("number, error", [(0, EmptyPage), (4, EmptyPage), ("x", PageNotAnInteger), (1.5, PageNotAnInteger)])
def test_invalid_page_numbers(number, error):
    with pytest.raises(error):
        make(23, 10).page(number)


def test_get_page_is_lenient():
    paginator = make(23, 10)
    assert paginator.get_page("2").number == 2
    assert paginator.get_page("abc").number == 1
    assert paginator.get_page(99).number == 3


def test_iterating_yields_every_item_once():
    paginator = make(47, 7)
    assert [item for page in paginator for item in page] == list(range(1, 48))
    assert repr(paginator.page(2)) == "<Page 2 of 7>"


def test_rejects_bad_configuration():
    with pytest.raises(ValueError):
        Paginator([], 0)
    with pytest.raises(ValueError):
        Paginator([], 5, orphans=5)
