"""One rule maps folders to import names: `clinpred.X` is the top-level folder `X/`.

`clinpred/` holds the package's `__init__.py` and one symbolic link per
top-level package folder (`clinpred/pilots -> ../pilots`, ...), so that the
source tree itself has the import layout: mypy, editors and `python -m` in the
checkout resolve `clinpred.pilots.tumor.classifier` to `pilots/tumor/classifier.py`
without an import hook or a remapped `package_dir`. setuptools follows the
links when it collects packages, so wheels and Bentos hold real files.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["clinpred", "clinpred.*"]))
