"""GIS support (standard §5.1 application-support layer): coordinates, the county boundary, distances.

* :mod:`cloud.geo.coords` — WGS-84 ↔ GCJ-02 (the offset datum of Chinese map apps), great-circle distance
* :mod:`cloud.geo.boundary` — the county boundary and townships from the bureau's GeoJSON, validated on load,
  point-in-polygon; a fictional sample for the demo county ships in ``cloud/geo/data/``
"""
