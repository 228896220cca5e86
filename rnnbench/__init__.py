"""rnnbench: cost and accuracy of gated RNN cells in float, integer and encrypted execution."""

__version__ = "0.1.0"
