"""The only package that imports pySigma: parsing, converting and checking Sigma rules.

pySigma's exceptions are turned into the portal's own errors here, with the rule's
source named, so callers never depend on pySigma's exception tree.
"""

from .rules import MAX_RULE_BYTES, ParsedRule, SigmaRuleError, convert_to_splunk, parse_rule

__all__ = ["MAX_RULE_BYTES", "ParsedRule", "SigmaRuleError", "convert_to_splunk", "parse_rule"]
