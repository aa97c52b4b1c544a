"""traceanalyzer: find MDL misuse by Windows kernel drivers in ETW traces."""

__version__ = "0.1.0"
