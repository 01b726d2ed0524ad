"""The model zoo: importing this package registers every family.

Every module of this package that does not start with ``_`` is one family and is
imported here, so a new family file registers itself without editing this list.
"""
import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
