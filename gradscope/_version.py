"""Version of the gradscope package."""

__version__ = "0.1.0"
