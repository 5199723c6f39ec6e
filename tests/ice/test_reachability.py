"""jinglefs.ice.reachability: when the ICE candidates of both sides say that a direct TCP
connection is likely (the ladder's fast path).  Candidates shaped like the NAT lab's and
like a home LAN's; the local networks are given, not read from this machine."""

from __future__ import annotations

import ipaddress

from jinglefs.ice.protocol import IceCandidate
from jinglefs.ice.reachability import Network, direct_path, local_networks


def host(ip: str) -> IceCandidate:
    return IceCandidate(1, "1", ip, 40000, 2130706431, "host")


def srflx(ip: str, base: str) -> IceCandidate:
    return IceCandidate(1, "2", ip, 40001, 1694498815, "srflx", rel_addr=base, rel_port=40000)


def relay(ip: str) -> IceCandidate:
    return IceCandidate(1, "3", ip, 50000, 16777215, "relay")


def nets(*cidrs: str) -> list[Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


HOME = nets("127.0.0.0/8", "192.168.1.0/24", "fe80::/64")


def test_a_peer_on_our_lan_is_direct() -> None:
    why = direct_path([host("192.168.1.10")], [host("192.168.1.23")], HOME)
    assert why == "the contact's address 192.168.1.23 is on our network 192.168.1.0/24"


def test_one_lan_behind_one_nat_is_direct() -> None:
    ours = [host("192.168.1.10"), srflx("198.51.100.7", "192.168.1.10")]
    theirs = [host("192.168.1.23"), srflx("198.51.100.7", "192.168.1.23")]
    assert direct_path(ours, theirs, HOME) is not None


def test_same_private_subnet_in_two_homes_is_not_direct() -> None:
    """Both homes number their LAN 192.168.1.0/24; STUN shows two public addresses."""
    ours = [host("192.168.1.10"), srflx("198.51.100.7", "192.168.1.10")]
    theirs = [host("192.168.1.23"), srflx("203.0.113.99", "192.168.1.23")]
    assert direct_path(ours, theirs, HOME) is None


def test_natlab_cone_hosts_are_not_direct() -> None:
    """natlab: A 10.1.0.2 behind r1 (203.0.113.11), B 10.2.0.2 behind r2 (.12)."""
    ours = [host("10.1.0.2"), srflx("203.0.113.11", "10.1.0.2"), relay("203.0.113.1")]
    theirs = [host("10.2.0.2"), srflx("203.0.113.12", "10.2.0.2"), relay("203.0.113.1")]
    assert direct_path(ours, theirs, nets("127.0.0.0/8", "10.1.0.0/24")) is None


def test_a_peer_that_stun_sees_as_it_is_has_no_nat() -> None:
    """natlab "open": the STUN server sees B's own address."""
    theirs = [host("10.2.0.2"), srflx("10.2.0.2", "10.2.0.2")]
    assert direct_path([host("10.1.0.2")], theirs, nets("10.1.0.0/24")) == \
        "the contact has an address without NAT (10.2.0.2)"


def test_we_without_nat_are_direct_too() -> None:
    ours = [host("198.51.100.20"), srflx("198.51.100.20", "198.51.100.20")]
    theirs = [host("10.2.0.2"), srflx("203.0.113.12", "10.2.0.2")]
    assert direct_path(ours, theirs, nets("198.51.100.0/24")) == \
        "we have an address without NAT (198.51.100.20)"


def test_a_global_host_address_counts_only_without_stun_saying_otherwise() -> None:
    theirs = [host("8.8.4.4")]
    assert direct_path([host("10.1.0.2")], theirs, nets("10.1.0.0/24")) == \
        "the contact has an address without NAT (8.8.4.4)"
    natted = [host("8.8.4.4"), srflx("1.1.1.1", "8.8.4.4")]
    assert direct_path([host("10.1.0.2")], natted, nets("10.1.0.0/24")) is None


def test_link_local_and_mdns_say_nothing() -> None:
    theirs = [host("fe80::1234"), IceCandidate(1, "4", "abcd-1234.local", 9, 1, "host")]
    assert direct_path([host("192.168.1.10")], theirs, HOME) is None


def test_two_clients_on_one_machine_are_direct() -> None:
    assert direct_path([host("127.0.0.1")], [host("127.0.0.1")], HOME) is not None


def test_no_candidates_from_the_peer_is_no_answer() -> None:
    assert direct_path([host("192.168.1.10")], [], HOME) is None


def test_local_networks_include_loopback() -> None:
    assert ipaddress.ip_network("127.0.0.0/8") in local_networks()
