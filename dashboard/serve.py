"""Run the Streamlit server with the dashboard's modules imported and its first view built.

``rnnbench dashboard`` starts ``python -m dashboard.serve run dashboard/app.py ...``.
Before the server starts, plotly, pandas and the chart modules are imported and every
chart of the unfiltered view of the results is built into the page's caches, so the
first visitor is served from memory.
"""

from __future__ import annotations

import sys

from streamlit.web import cli

from dashboard import data, views

if __name__ == "__main__":
    views.warm(data.paths_from_env())
    sys.exit(cli.main())
