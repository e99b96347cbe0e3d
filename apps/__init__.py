"""fedstack's apps on FeatureCloud's engine, one app-template folder each (never imported).

The `__init__.py` files only give each folder's `main.py` and `states.py` a module name of their
own for the type checker; an image runs `python3 -u /app/main.py` as a script.
"""
