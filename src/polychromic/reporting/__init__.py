"""Reporting: aggregation over seeds, LaTeX tables, figures and the paper package."""
