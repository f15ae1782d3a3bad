"""One router per resource. Core routers are listed in :mod:`cloud.app`; others register there with one line."""
