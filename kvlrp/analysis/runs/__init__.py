"""What every evaluation run shares: its files and resume state, the class check, config
checks, splitting the videos over workers and merging their tables, devices, clip timing."""
