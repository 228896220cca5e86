"""The results layer: the store (schema, files), queries, statistics, summary and compare.

The CLI and the dashboard read results only through these modules, so "the latest run
of a point", "the timed samples" and "the same machine" mean one thing everywhere.
"""
