"""The packages to ship, found rather than listed: every folder under luabridge/ and integrations/.

pyproject.toml holds the rest of the build's configuration; its package finder alone cannot add
``luabridge_docs``, which is the ``docs/`` folder under another name.
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["luabridge", "luabridge.*", "integrations", "integrations.*"]),
                "luabridge_docs"])
