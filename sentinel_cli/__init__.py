"""The ``sentinel`` command. Sub-commands load lazily so that an edge-only install still works."""
