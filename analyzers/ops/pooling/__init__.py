"""Pooling layers: the pooling ops, first-winner max pooling and its gradient paths."""
