"""dnsmasq_test(): real dnsmasq --test on rendered DNS files, plus the hosts-file grammar
dnsmasq itself never checks."""

from __future__ import annotations

import pytest

from bot.errors import InfrabotError
from bot.execute.dnsmasq import dnsmasq_test, hosts_problems

pytestmark = pytest.mark.integration
HOSTS = "# A records\n127.0.0.1 status.example.com\n"


def test_good_files_pass() -> None:
    ok, output = dnsmasq_test(
        {"cnames.conf": "cname=www.example.com,status.example.com,300\n", "hosts": HOSTS}
    )
    assert ok, output


@pytest.mark.parametrize(
    "cnames",
    [
        "cname=a.example.com,b.example.com,300\ncname=b.example.com,a.example.com,300\n",
        "cname=a.example.com,b.example.com\ncname=a.example.com,c.example.com\n",
        "cname=a.example.com\n,b.example.com,300\n",  # a newline inside a value
    ],
    ids=["loop", "duplicate", "split-line"],
)
def test_cnames_dnsmasq_refuses_fail(cnames: str) -> None:
    ok, output = dnsmasq_test({"cnames.conf": cnames, "hosts": HOSTS})
    assert not ok and "dnsmasq" in output and "infrabot-dnsmasq-" not in output


def test_a_hosts_line_dnsmasq_would_skip_fails() -> None:
    ok, output = dnsmasq_test({"cnames.conf": "", "hosts": HOSTS + "127.0.0.1\n"})
    assert not ok and "hosts line 3" in output
    assert hosts_problems("10.0.0.1 a.example.com b\n# c\n\n") == []
    assert hosts_problems("a.example.com 10.0.0.1\n10.0.0.1 bad_name!\n") == [
        "hosts line 1: not an IPv4 address first",
        "hosts line 2: not a host name after the address",
    ]


def test_a_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(InfrabotError, match="install dnsmasq"):
        dnsmasq_test({}, dnsmasq_bin="dnsmasq-nope")
