"""Views: pure render functions to HTML/SVG or plotly figures, and widgets around them."""
from kbench.viz.charts import accuracy_bars, attention_bars, color_of, dev_curves, results_table_html, show
from kbench.viz.links import alignment_html, linked_sentence_html
from kbench.viz.tree import positions_html, sentence_tree_html, tree_view_html, visible_matrix_svg

__all__ = ["accuracy_bars", "alignment_html", "attention_bars", "color_of", "dev_curves", "linked_sentence_html",
           "positions_html", "results_table_html", "sentence_tree_html", "show", "tree_view_html",
           "visible_matrix_svg"]
