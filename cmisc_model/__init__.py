"""cmisc: Cross-modal Mutual Information and Semantic Correlation of image–text pairs."""

__version__ = "0.1.0"
