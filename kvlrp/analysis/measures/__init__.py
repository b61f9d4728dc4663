"""Pure measures (numpy / pandas, no TensorFlow): frame shares and border scores, profiles and
the position prior, bootstrap intervals, paired tests, accuracy per step, step selection,
border-score changes, the temporal part of relevance, frame-flipping curves, the t-interval
over seeds."""
