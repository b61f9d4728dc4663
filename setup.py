"""Packaging for kvlrp: the video workflow (``kvlrp``) and its attribution engine."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_version() -> str:
    """The version, written once: ``__version__`` in ``kvlrp/__init__.py``."""
    text = (HERE / "kvlrp" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, flags=re.MULTILINE)
    if match is None:
        raise RuntimeError("kvlrp/__init__.py must define __version__ = \"X.Y.Z\"")
    return match.group(1)


setup(
    name="kvlrp",
    version=read_version(),
    description=(
        "Explain 3D-convolutional Keras video classifiers with deep Taylor / LRP: "
        "frame-position relevance, the border effect, and test-time step-size tuning."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["analyzers", "analyzers.*", "kvlrp", "kvlrp.*"]),
    include_package_data=True,
    package_data={"analyzers": ["py.typed"], "kvlrp": ["py.typed"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "numpy",
        "pandas",
        "matplotlib",
        "tqdm",
        "pillow",
    ],
    extras_require={
        "video": ["av>=11"],
        "tfio": ["tensorflow-io"],
        "beam": ["apache-beam>=2.50"],
        # TensorBoard summaries of the border effect while training (kvlrp train --border-every)
        "tensorboard": ["tensorboard>=2.16"],
        "dev": ["pytest", "pytest-xdist", "hypothesis", "ruff", "av>=11", "tensorboard>=2.16"],
        # the manual as a site (mkdocs.yml, `tox -e docs`); pinned: versions checked on Python 3.11
        "docs": [
            "mkdocs==1.6.1",
            "mkdocs-material==9.8.2",
            "mkdocstrings[python]==1.0.8",
            "mkdocstrings-python==2.0.11",
            "griffelib==2.4.1",
        ],
    },
    entry_points={"console_scripts": ["kvlrp=kvlrp.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
