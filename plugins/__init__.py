"""arbench's built-in plugins, installed as the package ``arbench_plugins``.

Each subpackage's ``__init__`` is an entry point of the ``arbench`` group (see
pyproject.toml) and lists its plugins as specs with lazy ``"module:Class"``
factories, so discovering them imports neither torch nor the implementations.
"""
