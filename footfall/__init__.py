"""footfall: privacy-first, cookie-free web analytics. Shared CLI, config and event contract."""

__version__ = "0.1.0"
