"""Maps the repository's folders under one import namespace, `clinpred`.

`pilots/` installs as `clinpred.pilots` and `services/` as `clinpred.services`,
so nothing generic such as `services` lands at the top of site-packages.
Package lists are derived, so new subpackages need no edit here.
"""

from setuptools import find_packages, setup

FOLDERS = {"clinpred.pilots": "pilots", "clinpred.services": "services"}

packages = ["clinpred", *(f"clinpred.{p}" for p in find_packages("clinpred"))]
for namespace, folder in FOLDERS.items():
    packages += [namespace, *(f"{namespace}.{p}" for p in find_packages(folder))]

setup(packages=packages, package_dir={"clinpred": "clinpred", **FOLDERS})
