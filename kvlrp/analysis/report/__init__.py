"""``kvlrp report``: the markdown report, its plots and the across-seed study section."""
