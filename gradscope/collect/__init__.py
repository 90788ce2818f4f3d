"""Collection: the GradScope callback and Scope for custom training loops."""

from gradscope.collect.callback import GradScope
from gradscope.collect.scope import Scope

__all__ = ["GradScope", "Scope"]
