"""Supervision and assessment (监督考核, standard §8.6) and continuous improvement (§8.3), computed from the journal."""
