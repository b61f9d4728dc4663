"""A Keras model made explainable: traced into its layers where it is subclassed
(``functional``), computed in float32 where it was built in mixed precision (``precision``),
flattened into the engine's graph of steps (``graph``), and its logits (``logits``)."""
