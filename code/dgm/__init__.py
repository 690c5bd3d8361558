"""Deep Generative Models, Derived and Run: the library the book's chapters import."""

__version__ = "0.1.0"
