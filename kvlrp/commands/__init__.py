"""Sub-commands of the ``kvlrp`` console script (see :mod:`kvlrp.cli`)."""
