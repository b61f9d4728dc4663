"""Recurrent layers: the layer ops (LSTM, GRU, SimpleRNN, ConvLSTM, Bidirectional, masks)
and their cells."""
