"""MLPipe: a make-style, content-addressed build tool for machine-learning pipelines."""

__version__ = "0.1.0"
