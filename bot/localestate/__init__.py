"""The local estate: the services and namespace containers of hosts with connection local."""

from bot.localestate.containers import netns_available
from bot.localestate.estate import LocalEstate, check_ports
from bot.localestate.layout import HostLayout, dnsmasq_conf, nginx_conf
from bot.localestate.status import (
    ContainerStatus,
    EstateStatus,
    HostStatus,
    ServiceStatus,
    render_status,
)

__all__ = [
    "ContainerStatus",
    "EstateStatus",
    "HostLayout",
    "HostStatus",
    "LocalEstate",
    "ServiceStatus",
    "check_ports",
    "dnsmasq_conf",
    "netns_available",
    "nginx_conf",
    "render_status",
]
