"""Rule packs as data: deadlines, holidays, analysis, risk grading, random draw, law library, checklists.

The TOML files in this directory are loaded and validated by the engine that uses them (``load_model`` in
:mod:`cloud.rules.loader`); a county edits these files, not code.
"""
