"""The dashboards bundle as Python: datasets, charts and dashboards, written to YAML.

``python -m dashboards.spec`` (from the repo root) regenerates ``dashboards/bundle`` from
these definitions; ``tests/test_dashboards.py`` fails when the committed YAML and this
source disagree. One definition produces both what a chart shows in the browser
(``params``, which the frontend turns into a query) and the saved ``query_context`` the
chart data API, reports and tests use, so the two cannot drift apart as they do in
hand-edited exports.
"""
