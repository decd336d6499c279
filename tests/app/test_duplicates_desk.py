"""The review desk (issue 33, defect 2): a refused verdict shows where the reviewer looks."""

from __future__ import annotations

from tests.app.test_page_duplicates import _dup_copy, _page, dup_ws  # noqa: F401 (fixtures)
from tests.page_helpers import unescape


def _flat(node) -> list:
    """The page's elements in the order they are drawn (blocks opened depth first)."""
    children = getattr(node, "children", None)
    if not children:
        return [node]
    out = []
    for k in sorted(children):
        out.extend(_flat(children[k]))
    return out


def test_a_refused_verdict_is_the_first_thing_on_the_desk(dup_ws):  # noqa: F811 (the fixture)
    _, _, store = dup_ws
    a, b = _page("ann"), _page("bob")
    a.button(key="dup_v_exact").click().run()
    b.button(key="dup_v_not").click().run()  # bob still sees the pair ann has just decided
    assert not b.exception
    assert [v.reviewer for v in store.history()] == ["ann"]
    flat = _flat(b.main)
    errors = [i for i, e in enumerate(flat) if getattr(e, "type", "") == "alert" or
              type(e).__name__ == "Error"]
    refusals = [i for i in errors if unescape(flat[i].value).startswith("Not saved: ")]
    assert len(refusals) == 1
    desk = [i for i, e in enumerate(flat) if getattr(e, "key", None) in ("dup_bulk", "dup_v_exact")
            or type(e).__name__ in ("Image", "Metric")]
    assert desk and refusals[0] < min(desk), "the refusal is drawn below the desk"
    assert any(unescape(t.value).startswith("Not saved: ") for t in b.toast)
