"""Terminal tables fitted to the width: whole words, short columns on one line, wide tables split."""

from __future__ import annotations

import pytest

from probe.cli.console import column_groups, fit_widths


def test_fit_widths_keeps_words_whole_and_short_columns_on_one_line():
    # (longest word, longest body line, longest line with the header): a number, a label, a caption
    extents = [(6, 6, 6), (8, 12, 12), (9, 60, 60)]
    widths = fit_widths(extents, 40)
    assert widths == [6, 12, 22]  # the number and the label fit whole; the caption takes the rest
    assert sum(widths) <= 40 and all(w >= lo for w, (lo, _, _) in zip(widths, extents, strict=True))
    # 'prompt 1' (8 cells, longest word 6) stays on one line before two long texts share the rest
    assert fit_widths([(6, 8, 8), (7, 34, 34), (7, 34, 34)], 25) == [8, 8, 9]


def test_fit_widths_lets_headers_wrap_before_cells_do():
    # "zero-shot flagged" over "100% [21–100]" cells: the header takes two lines, the prompt keeps room
    extents = [(8, 46, 46), (9, 13, 17), (7, 9, 15)]
    assert fit_widths(extents, 50) == [28, 13, 9]
    assert fit_widths(extents, 80) is None  # everything fits on one line


def test_fit_widths_leaves_a_table_that_fits_or_cannot_fit_alone():
    assert fit_widths([(3, 10, 10), (3, 10, 10)], 20) is None  # fits as it is
    assert fit_widths([(15, 15, 15), (15, 20, 20)], 25) is None  # the words alone are too wide: split instead


def test_column_groups_repeat_the_first_column_and_each_fits():
    extents = [(10, 10, 10), (20, 20, 20), (20, 20, 20), (20, 20, 20)]
    # three columns take 10 + 20 + 20 cells and 3 * 3 + 1 of borders and padding: exactly 60
    assert column_groups(extents, 60) == [[0, 1, 2], [0, 3]]
    assert column_groups(extents, 59) == [[0, 1], [0, 2], [0, 3]]
    assert column_groups([(5, 5, 5), (5, 5, 5), (5, 5, 5)], 80) == [[0, 1, 2]]


@pytest.mark.parametrize("width", [60, 80, 100])
def test_printed_tables_fit_the_terminal(capsys, monkeypatch, width):
    from probe.cli import console

    monkeypatch.setattr(console.out, "_width", width)
    caption = "a big blue circle above a small green triangle next to a red star"
    console.print_table("A title", ["prompt", *(f"label {i}" for i in range(8)), "N"], [[caption, *["12%"] * 8, "4"]])
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= width for line in lines)
    assert sum("A title" in line for line in lines) >= 1
    for word in caption.split():  # every word of the caption is printed whole
        assert any(f" {word} " in f" {line.replace('│', ' ')} " for line in lines)


def test_a_long_error_message_is_clipped_in_the_middle():
    from probe.errors import MAX_MESSAGE, clipped, short_repr

    text = "where: " + "x" * 100_000 + " (the hint)"
    shown = clipped(text)
    assert len(shown) < MAX_MESSAGE + 60
    assert shown.startswith("where: xxx") and shown.endswith("(the hint)") and "characters left out" in shown
    assert clipped("short") == "short"
    assert short_repr("y" * 500) == repr("y" * 500)[:77] + "..." and short_repr(3) == "3"
