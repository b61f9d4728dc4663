"""Import Zennit 1.0 where torchvision's C extension cannot load (shared by
``test_zennit_crosscheck.py`` and ``benchmarks/bench_zennit.py``; imports neither kvlrp nor
TensorFlow).

Zennit 1.0's ``zennit.types`` imports torchvision, and the torchvision wheel that installs
beside the CPU torch wheel is a CUDA build whose extension does not load; zennit's rules,
composites, canonizers and attributors only read torchvision's pure-Python
``FrozenBatchNorm2d``, so where ``import zennit`` fails that way, zennit and torchvision are
loaded without their package ``__init__`` (:func:`bare_package`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def bare_package(name: str) -> types.ModuleType:
    """The installed package ``name`` as a module object whose ``__init__`` is not run (its
    submodules are then imported from the installed files as usual)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} is not installed")
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)
    return package


def import_zennit() -> tuple[types.ModuleType, str | None]:
    """``zennit`` and None; or, where its import fails on torchvision's C extension, the
    package object without its ``__init__`` (beside a torchvision whose ``FrozenBatchNorm2d``
    is loaded without torchvision's ``__init__``) and a note saying so. An ImportError (torch,
    torchvision or zennit not installed) is raised as it is."""
    try:
        return importlib.import_module("zennit"), None
    except ImportError:
        raise
    except Exception as err:  # noqa: BLE001  (torchvision's broken extension: RuntimeError)
        for name in [m for m in sys.modules if m.split(".")[0] in ("zennit", "torchvision")]:
            del sys.modules[name]
        bare_package("torchvision")
        ops = bare_package("torchvision.ops")
        ops.FrozenBatchNorm2d = importlib.import_module("torchvision.ops.misc").FrozenBatchNorm2d
        note = (f"torchvision could not load ({str(err)[:60]}); zennit and torchvision were "
                "imported without their package __init__")
        return bare_package("zennit"), note
