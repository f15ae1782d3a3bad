"""Site configuration: models (one per TOML section), loader (file, key, reason errors), JSON Schema."""

from edge.config.loader import LoadedSite, load_site, load_site_text
from edge.config.models import SiteConfig

__all__ = ["LoadedSite", "SiteConfig", "load_site", "load_site_text"]
