"""peakshop: a shop that stays up and stays correct through the peak."""

__version__ = "0.1.0"
