"""Graph route modules. Every module in this package is imported once; its @route handlers
register themselves in graphemu.core. Add a family of routes by adding a module."""

import importlib
import pkgutil

_loaded = False


def load_all():
    global _loaded
    if _loaded:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True
