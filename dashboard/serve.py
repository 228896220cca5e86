"""Run the Streamlit server with the dashboard's modules imported up front.

``rnnbench dashboard`` starts ``python -m dashboard.serve run dashboard/app.py ...``:
plotly, pandas and the chart modules load while the server starts rather than during
the first page view, which then only reads the results and draws.
"""

from __future__ import annotations

import sys

from streamlit.web import cli

import dashboard.charts  # noqa: F401  (imported for its side effect: warm module cache)
import dashboard.report  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli.main())
