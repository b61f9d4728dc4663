"""What every evaluation run shares: the run skeleton (:mod:`~kvlrp.analysis.runs.skeleton`:
config -> output folder -> classes -> plan -> resume -> compute -> summarise), its files and
resume state, the class check, config checks, splitting the videos over workers and merging
their tables, devices, clip timing."""
