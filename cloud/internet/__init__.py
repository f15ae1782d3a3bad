"""Internet monitoring (互联网监测, standard §6.2): online advertisements and prices as a clue source.

* :mod:`cloud.internet.models` — observations (ads, prices), screening hits, fetch runs; API model families
* :mod:`cloud.internet.rules` — the screening rule pack ``cloud/rules/internet_screening.toml``, cross-checked
  against the law library
* :mod:`cloud.internet.screening` / :mod:`cloud.internet.pricing` — the one engine for ad text and price rules
* :mod:`cloud.internet.service` — record an observation, screen it, turn every hit into a clue of the
  ``internet_monitoring`` channel (through :func:`cloud.workflow.grouping.collect`)
* :mod:`cloud.internet.csv_import` — CSV import with row and column errors
* :mod:`cloud.internet.fetchers` — the fetcher plug-in interface and the configurable HTML/JSON page fetcher
"""
