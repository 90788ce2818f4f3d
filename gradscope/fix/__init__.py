"""Fixes: the catalog of remedies findings point to (transforms and verification come later)."""

from gradscope.fix.catalog import CATALOG, Fix, fixes_for, get_fix

__all__ = ["CATALOG", "Fix", "fixes_for", "get_fix"]
