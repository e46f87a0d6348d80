"""Views of a K-BERT sentence tree: the tree (Fig. 2), its positions, and its visible matrix (Fig. 3).

Pure functions from a :class:`~kbench.models.kbert.SentenceTree` to a
self-contained HTML/SVG string: no scripts, no network, so they render the
same live, in an executed notebook, and in its HTML export.
"""
from __future__ import annotations

from html import escape

import numpy as np

SENTENCE_COLOR = "#dbe9f6"
BRANCH_COLOR = "#fde2c4"
VISIBLE_COLOR = "#2f6f9f"


def kept_parts(tree) -> tuple[list[bool], list[list[bool]]]:
    """Return which words, and which of each word's branches, keep at least one token after the cut."""
    words = set(tree.word_index[:tree.length][tree.segments[:tree.length] == 0].tolist())
    branches = set(tree.branch_index[:tree.length].tolist())
    kept_branches, number = [], 0     # branches are numbered across the sentence, word after word
    for texts in tree.branches:
        kept_branches.append([number + k in branches for k in range(len(texts))])
        number += len(texts)
    return [index in words for index in range(len(tree.words))], kept_branches


def sentence_tree_html(tree) -> str:
    """Return the sentence as a row of words, each with its injected branches hanging beneath it.

    Words and branches cut at ``max_length`` are drawn struck through and grey,
    not as kept.
    """
    kept_words, kept_branches = kept_parts(tree)
    cut_style = "opacity:0.45;text-decoration:line-through"
    columns = []
    for word, branches, word_kept, branch_kept in zip(tree.words, tree.branches, kept_words, kept_branches):
        hanging = "".join(f'<div style="margin-top:4px;padding:2px 6px;background:{BRANCH_COLOR};'
                          f'border-radius:4px;font-size:90%;{"" if kept else cut_style}">↳ {escape(text)}</div>'
                          for text, kept in zip(branches, branch_kept))
        columns.append(f'<div style="display:inline-block;vertical-align:top;margin:2px 4px">'
                       f'<div style="padding:2px 6px;background:{SENTENCE_COLOR};border-radius:4px;'
                       f'font-weight:bold;{"" if word_kept else cut_style}">{escape(word)}</div>{hanging}</div>')
    note = (f"<div style='color:#a33'>{tree.truncated} token(s) cut at max_length={len(tree.tokens)} "
            "(struck through)</div>" if tree.truncated else "")
    return f'<div style="font-family:sans-serif">{"".join(columns)}{note}</div>'


def positions_html(tree, include_padding: bool = False) -> str:
    """Return a table of each token with its hard position, soft position and segment."""
    count = len(tree.tokens) if include_padding else tree.length
    header = "<tr><th style='text-align:left'>token</th>" + "".join(
        f"<td style='background:{BRANCH_COLOR if tree.segments[i] else SENTENCE_COLOR};padding:2px 4px'>"
        f"{escape(tree.tokens[i])}</td>" for i in range(count)) + "</tr>"
    rows = [("hard position", tree.hard_positions), ("soft position", tree.soft_positions),
            ("segment (1 = knowledge)", tree.segments)]
    body = "".join(f"<tr><th style='text-align:left'>{name}</th>" +
                   "".join(f"<td style='text-align:center'>{values[i]}</td>" for i in range(count)) + "</tr>"
                   for name, values in rows)
    return f'<table style="border-collapse:collapse;font-family:monospace;font-size:85%">{header}{body}</table>'


def visible_matrix_svg(tree, cell: int = 16, include_padding: bool = False) -> str:
    """Return the visible matrix as an SVG grid: a filled cell where row token may see column token."""
    count = len(tree.tokens) if include_padding else tree.length
    label_width = 8 * max(len(t) for t in tree.tokens[:count]) + 10
    size = label_width + cell * count
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
             f'font-family="monospace" font-size="{cell - 5}">']
    for i in range(count):
        color = BRANCH_COLOR if tree.segments[i] else SENTENCE_COLOR
        y = label_width + i * cell
        parts.append(f'<rect x="0" y="{y}" width="{label_width - 4}" height="{cell - 1}" fill="{color}"/>'
                     f'<text x="{label_width - 8}" y="{y + cell - 5}" text-anchor="end">{escape(tree.tokens[i])}</text>')
        x = label_width + i * cell
        parts.append(f'<rect x="{x}" y="0" width="{cell - 1}" height="{label_width - 4}" fill="{color}"/>'
                     f'<text transform="translate({x + cell - 5},{label_width - 8}) rotate(-90)">'
                     f'{escape(tree.tokens[i])}</text>')
    rows, cols = np.nonzero(tree.visible_matrix[:count, :count])
    parts += [f'<rect x="{label_width + c * cell}" y="{label_width + r * cell}" width="{cell - 1}" '
              f'height="{cell - 1}" fill="{VISIBLE_COLOR}"><title>{escape(tree.tokens[r])} sees '
              f'{escape(tree.tokens[c])}</title></rect>' for r, c in zip(rows, cols)]
    parts.append("</svg>")
    return "".join(parts)


def tree_view_html(tree) -> str:
    """Return the tree, its positions and its visible matrix together (the notebook's explorer view)."""
    return (sentence_tree_html(tree) + "<br>" + positions_html(tree) + "<br>" + visible_matrix_svg(tree))
