"""A local stand-in for Splunk's REST search API and HTTP Event Collector; see README.md."""

from .server import SplunkStandIn

__all__ = ["SplunkStandIn"]
