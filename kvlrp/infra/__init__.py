"""Infrastructure every part of kvlrp uses: paths on local and remote filesystems, atomic
writes, output-folder locks and safe paths, the one resume primitive, value checks, and
TensorFlow set-up (kernel choice, quiet start-up, private internals).

Nothing here knows about videos or models.
"""
