"""CIDR and firewall rule validation: every refusal names the field and the reason."""

import pytest
from django.core.exceptions import ValidationError

from networking import ipam, rules
from provisioning import host_network


@pytest.mark.parametrize(
    ("cidr", "why"),
    [
        ("8.8.8.0/24", "private ranges"),
        ("172.32.0.0/24", "private ranges"),  # just outside 172.16/12
        ("10.0.0.0/8", "between /16 and /28"),
        ("10.0.0.0/15", "between /16 and /28"),
        ("192.168.1.0/29", "between /16 and /28"),
        ("10.0.0.5/24", "did you mean 10.0.0.0/24"),
        ("10.0.0.0", "with a prefix"),
        ("10.0.0.0/33", "not an IPv4 CIDR"),
        ("fd00::/64", "not an IPv4 CIDR"),
        ("banana/24", "not an IPv4 CIDR"),
    ],
)
def test_bad_cidrs_say_why(cidr: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ipam.parse_cidr(cidr)
    assert why in caught.value.message_dict["cidr"][0]


@pytest.mark.parametrize(
    "cidr", ["10.0.0.0/16", "172.16.5.0/24", "172.31.255.240/28", "192.168.0.0/16"]
)
def test_good_cidrs(cidr: str) -> None:
    assert str(ipam.parse_cidr(cidr)) == cidr


def test_gateway_is_the_first_host() -> None:
    assert ipam.gateway_of(ipam.parse_cidr("10.1.2.0/24")) == "10.1.2.1"


GOOD = {"direction": "ingress", "protocol": "tcp", "ports": "30000-32767", "cidr": "0.0.0.0/0"}


def test_valid_rules_are_normalised() -> None:
    clean = rules.validate(
        [
            GOOD,
            {"direction": "egress", "protocol": "all", "cidr": "10.0.0.0/8", "label": "lan"},
            {"direction": "ingress", "protocol": "udp", "ports": " 53 ", "cidr": "1.2.3.4/32"},
            {"direction": "ingress", "protocol": "icmp", "cidr": "0.0.0.0/0", "ports": ""},
        ]
    )
    assert clean[0] == GOOD
    assert clean[1]["label"] == "lan"
    assert clean[2]["ports"] == "53"
    assert "ports" not in clean[3]


@pytest.mark.parametrize(
    ("rule", "field", "why"),
    [
        ({**GOOD, "direction": "sideways"}, "direction", "ingress, egress"),
        ({**GOOD, "protocol": "sctp"}, "protocol", "tcp, udp, icmp, all"),
        ({**GOOD, "ports": "0"}, "ports", "between 1 and 65535"),
        ({**GOOD, "ports": "65536"}, "ports", "between 1 and 65535"),
        ({**GOOD, "ports": "2000-1000"}, "ports", "must not be above"),
        ({**GOOD, "ports": "http"}, "ports", "one port"),
        ({**GOOD, "protocol": "icmp"}, "ports", "only to tcp and udp"),
        ({**GOOD, "protocol": "all"}, "ports", "only to tcp and udp"),
        ({**GOOD, "cidr": "10.0.0.1/24"}, "cidr", "host bits zero"),
        ({**GOOD, "cidr": "everywhere"}, "cidr", "IPv4 CIDR"),
        ({k: v for k, v in GOOD.items() if k != "cidr"}, "cidr", "IPv4 CIDR"),
        ({**GOOD, "label": "x" * 64}, "label", "at most 63"),
        ({**GOOD, "colour": "red"}, "rule", "colour"),
    ],
)
def test_bad_rule_names_its_index_and_field(rule: dict, field: str, why: str) -> None:
    with pytest.raises(rules.InvalidRules) as caught:
        rules.validate([GOOD, GOOD, rule])
    assert list(caught.value.errors) == ["2"]
    assert why in caught.value.errors["2"][field][0]
    # The flat form (browser, non-API callers) names them too.
    assert caught.value.message_dict["rules"][0].startswith(f"rule 2, {field}:")


def test_rules_must_be_a_list() -> None:
    with pytest.raises(ValidationError) as caught:
        rules.validate({"direction": "ingress"})
    assert "rules" in caught.value.message_dict


def test_default_rules_open_the_api_and_the_network_only() -> None:
    specs = [host_network.rule_spec(r) for r in rules.default_rules("10.9.0.0/24")]
    ingress = [s for s in specs if s.direction == "ingress"]
    assert {(s.protocol, s.port_min, s.port_max, s.cidr) for s in ingress} == {
        ("all", None, None, "10.9.0.0/24"),
        ("tcp", 6443, 6443, "0.0.0.0/0"),
    }
    assert any(s.direction == "egress" and s.cidr == "0.0.0.0/0" for s in specs)
