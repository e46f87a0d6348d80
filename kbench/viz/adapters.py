"""K-Adapter's architecture as a static SVG: the frozen base's states, each adapter's layers at their taps, the concat.

Drawn from the adapters' own taps (``notebooks/11_k_adapter.ipynb``, section 1; the paper's Figure 2).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from kbench.errors import InputError

COLOURS = ("#2a9d8f", "#e76f51", "#6a4c93", "#e9c46a")


def adapter_architecture_svg(depth: int, adapters: Mapping[str, Sequence[int]], title: str = "") -> str:
    """Return an SVG of a ``depth``-layer frozen base (states 0..depth) with each adapter's layers at its taps.

    Each adapter layer is drawn beside the base state it taps, with an arrow
    from that state (for the second adapter on, routed in the gap under the
    rows, so it never runs through another adapter's box: there is no path
    between adapters) and one from the adapter's previous layer; the base's last
    state and every adapter's last output meet in the concatenation at the top.
    """
    if depth < 1:
        raise InputError(f"a base needs at least one layer, got depth {depth}")
    for name, taps in adapters.items():
        if not taps or any(not 0 <= t <= depth for t in taps):
            raise InputError(f"adapter {name!r} has taps {list(taps)} outside the base's states 0..{depth}")
    row, top, base_x, box_w = 34, 70, 20, 150
    height = top + (depth + 1) * row + 20
    width = base_x + box_w + 40 + 170 * max(1, len(adapters))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><title>{escape(title or "K-Adapter architecture")}</title>',
             '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
             '<path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>']
    y_of = lambda state: top + (depth - state) * row
    for state in range(depth + 1):
        label = "embeddings (state 0)" if state == 0 else f"base layer {state} (frozen)"
        parts.append(f'<rect x="{base_x}" y="{y_of(state)}" width="{box_w}" height="{row - 8}" rx="4" fill="#dde3ea" '
                     f'stroke="#8895a7"/><text x="{base_x + 8}" y="{y_of(state) + 17}">{escape(label)}</text>')
    concat_y = 12
    parts.append(f'<rect x="{base_x}" y="{concat_y}" width="{width - 2 * base_x}" height="30" rx="4" fill="#fff4d6" '
                 f'stroke="#c9a227"/><text x="{base_x + 8}" y="{concat_y + 19}">concatenate [base last state; '
                 f'{"; ".join(escape(n) + " output" for n in adapters)}] → linear → task head</text>')
    parts.append(f'<line x1="{base_x + box_w / 2}" y1="{y_of(depth)}" x2="{base_x + box_w / 2}" y2="{concat_y + 30}" '
                 'stroke="#555" marker-end="url(#arrow)"/>')
    for index, (name, taps) in enumerate(adapters.items()):
        colour = COLOURS[index % len(COLOURS)]
        x = base_x + box_w + 40 + 170 * index
        previous = None
        for k, tap in enumerate(taps):
            y = y_of(tap)
            parts.append(f'<rect x="{x}" y="{y}" width="130" height="{row - 8}" rx="4" fill="{colour}" opacity="0.85"/>'
                         f'<text x="{x + 6}" y="{y + 17}" fill="white">{escape(name)} layer {k + 1} (tap {tap})</text>')
            if index == 0:
                parts.append(f'<line x1="{base_x + box_w}" y1="{y + 13}" x2="{x - 2}" y2="{y + 13}" stroke="#555" '
                             'marker-end="url(#arrow)"/>')
            else:   # under the other adapters' boxes, in the gap between rows: no arrow runs through a label
                lane, gap_y = base_x + box_w + 8 + 4 * index, y + row - 4
                points = [(base_x + box_w, y + 18), (lane, y + 18), (lane, gap_y), (x - 12, gap_y),
                          (x - 12, y + 13), (x - 2, y + 13)]
                parts.append('<polyline points="' + " ".join(f"{px},{py}" for px, py in points) + '" fill="none" '
                             'stroke="#555" marker-end="url(#arrow)"/>')
            if previous is not None:
                parts.append(f'<line x1="{x + 65}" y1="{previous}" x2="{x + 65}" y2="{y + row - 6}" stroke="{colour}" '
                             'stroke-width="2" marker-end="url(#arrow)"/>')
            previous = y
        parts.append(f'<line x1="{x + 65}" y1="{previous}" x2="{x + 65}" y2="{concat_y + 30}" stroke="{colour}" '
                     'stroke-width="2" marker-end="url(#arrow)"/>')
    parts.append("</svg>")
    return "".join(parts)
