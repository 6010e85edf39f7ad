"""Developer tools shipped beside the product, never imported by the pipeline itself.

- `crmwh_tools.demo_data`: the sample exports of every supported layout, with their planted
  faults (`crmwh demo-data`);
- `crmwh_tools.bench`: the benchmark (`crmwh bench`): read floor, full refresh, increment,
  checks, memory and chart latency, written to `bench/results-<scale>.{json,md}`.

They are installed with the package so that `crmwh demo-data` and `crmwh bench` work from a
wheel, but the product (`pipelines/`) does not depend on them.
"""
