"""``kvlrp strides``: per-clip predictions at several step sizes, and the run that writes the
stride accuracy table (and its reports)."""
