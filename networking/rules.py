"""Firewall rules: validation, the default rule set, and what the nwfilter builder takes.

A rule is {"direction", "protocol", "ports"?, "cidr", "label"?}; anything not accepted is
dropped by the nwfilter (ingress), egress is open unless a firewall says otherwise.
"""

import ipaddress
from typing import Any

from portal.errors import Invalid

DIRECTIONS = ("ingress", "egress")
PROTOCOLS = ("tcp", "udp", "icmp", "all")
FIELDS = ("direction", "protocol", "ports", "cidr", "label")
MAX_RULES = 100
MAX_LABEL = 63

Rule = dict[str, str]
RuleErrors = dict[str, dict[str, list[str]]]


class InvalidRules(Invalid):
    """Errors per rule index and field; `errors` keeps that shape, and the API answers it
    (a 400 with code "invalid", `{"rules": {"<index>": {"<field>": [...]}}}`)."""

    def __init__(self, errors: RuleErrors) -> None:
        self.errors = errors
        flat = [
            f"rule {index}, {field}: {message}"
            for index, fields in errors.items()
            for field, messages in fields.items()
            for message in messages
        ]
        super().__init__({"rules": "; ".join(flat)})

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "rules": self.errors}


def parse_ports(ports: str) -> tuple[int, int]:
    """ "6443" -> (6443, 6443); "30000-32767" -> (30000, 32767); ValueError saying why."""
    low, sep, high = ports.partition("-")
    if not low.strip().isdigit() or (sep and not high.strip().isdigit()):
        raise ValueError('Give one port ("6443") or a range ("30000-32767").')
    first, last = int(low), int(high) if sep else int(low)
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        raise ValueError("Ports are between 1 and 65535.")
    if first > last:
        raise ValueError("The first port of a range must not be above the last.")
    return first, last


def _rule_errors(raw: Any) -> tuple[Rule, dict[str, list[str]]]:
    if not isinstance(raw, dict):
        return {}, {"rule": ["Each rule is an object."]}
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        errors["rule"] = [f"Unknown field(s): {', '.join(map(str, unknown))}."]
    rule: Rule = {}
    direction = raw.get("direction")
    if direction not in DIRECTIONS:
        errors["direction"] = [f"Must be one of: {', '.join(DIRECTIONS)}."]
    else:
        rule["direction"] = direction
    protocol = raw.get("protocol")
    if protocol not in PROTOCOLS:
        errors["protocol"] = [f"Must be one of: {', '.join(PROTOCOLS)}."]
    else:
        rule["protocol"] = protocol
    ports = raw.get("ports")
    if ports not in (None, ""):
        if protocol not in ("tcp", "udp"):
            errors["ports"] = ["Ports apply only to tcp and udp."]
        else:
            try:
                parse_ports(str(ports))
                rule["ports"] = str(ports).replace(" ", "")
            except ValueError as err:
                errors["ports"] = [str(err)]
    cidr = raw.get("cidr")
    try:
        net = ipaddress.IPv4Network(str(cidr), strict=True)
        if "/" not in str(cidr):
            raise ValueError
        rule["cidr"] = str(net)
    except ValueError:
        errors["cidr"] = ['An IPv4 CIDR with host bits zero, e.g. "0.0.0.0/0" or "10.0.0.0/24".']
    label = raw.get("label") or ""
    if not isinstance(label, str) or len(label) > MAX_LABEL:
        errors["label"] = [f"Text of at most {MAX_LABEL} characters."]
    elif label:
        rule["label"] = label
    return rule, errors


def validate(raw: Any) -> list[Rule]:
    """The rules normalised, or InvalidRules naming each bad rule's index and field."""
    if not isinstance(raw, list):
        raise Invalid({"rules": "A list of rules."})
    if len(raw) > MAX_RULES:
        raise Invalid({"rules": f"At most {MAX_RULES} rules."})
    rules, errors = [], {}
    for index, item in enumerate(raw):
        rule, rule_errors = _rule_errors(item)
        if rule_errors:
            errors[str(index)] = rule_errors
        rules.append(rule)
    if errors:
        raise InvalidRules(errors)
    return rules


def default_rules(cidr: str) -> list[Rule]:
    """Traffic inside the network, the Kubernetes API from anywhere, all egress."""
    return [
        {"direction": "ingress", "protocol": "all", "cidr": cidr, "label": "inside the network"},
        {"direction": "ingress", "protocol": "tcp", "ports": "6443", "cidr": "0.0.0.0/0",
         "label": "Kubernetes API"},
        {"direction": "egress", "protocol": "all", "cidr": "0.0.0.0/0", "label": "all egress"},
    ]  # fmt: skip
