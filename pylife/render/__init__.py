"""Renderers: report model -> text (tabulate, colour) or JSON."""
