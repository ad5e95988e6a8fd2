"""The status page keeps what Meta sends in its place: long messages cut, markup escaped in
every cell that can hold Meta's words (errors, disabled-metric reasons, skip reasons)."""

from __future__ import annotations

from html.parser import HTMLParser

from collectord import PollResult, Skip
from collectord.plugin.api import Disable
from collectord.store.store import Store
from collectord.web.status_page import MAX_MESSAGE, render_status_page, shorten

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Elements(HTMLParser):
    """The tags of a document, to see that Meta's words made none."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def tags(html: str) -> set[str]:
    parser = Elements()
    parser.feed(html)
    return set(parser.tags)


def test_a_huge_error_message_is_cut_on_the_page() -> None:
    store = Store()
    store.register("s", "facebook_page", ("daily",))
    store.record_failure(
        "s", "daily", reason="bad_response", message="Meta says " + "x" * 1_000_000, duration=0.1
    )
    html = render_status_page(store.snapshot(), version="1", ready=True, now=0.0)
    assert len(html) < 20_000
    assert "Meta says " + "x" * (MAX_MESSAGE - 11) + "… <em>(bad_response)" in html


def test_shorten_keeps_short_text_and_flattens_control_characters() -> None:
    assert shorten("fine") == "fine"
    assert shorten("a\r\nb\x00c") == "a  b c"
    assert shorten("y" * 400) == "y" * (MAX_MESSAGE - 1) + "…"


def test_every_cell_holding_meta_text_is_escaped() -> None:
    store = Store()
    store.register("s", "facebook_page", ("fast",))
    store.record_success(
        "s",
        "fast",
        PollResult(disabled=(Disable("page_fans", HOSTILE),), skipped=(Skip("1", HOSTILE),)),
        duration=0.1,
    )
    store.record_failure("s", "fast", reason="other", message=HOSTILE, duration=0.1)
    html = render_status_page(store.snapshot(), version="1", ready=True, now=0.0)
    assert not {"script", "img"} & tags(html)
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") == 3
