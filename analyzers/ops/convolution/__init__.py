"""Convolution helpers: the forward-convolution / patch-embedding VJPs, grouped (channelwise)
3D convolutions and the merging of temporal taps back into one grouped convolution."""
