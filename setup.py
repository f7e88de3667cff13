"""Builds the optional C speedups (netcore/_speedups.c); everything else is in pyproject.toml.

The extension is optional: without a C compiler, or on a free-threaded Python (it keeps
one buffer that only the GIL guards), the install goes on and netcore uses its pure-Python
fallback, which behaves the same.
"""

import sys
import sysconfig

from setuptools import Extension, setup

speedups = Extension("netcore._speedups", ["netcore/_speedups.c"], optional=True)
wanted = sys.platform != "win32" and not sysconfig.get_config_var("Py_GIL_DISABLED")
setup(ext_modules=[speedups] if wanted else [])
