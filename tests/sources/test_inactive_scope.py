"""Which ports API mode asks for INACTIVE bindings (issue 14): only where one can exist."""

from __future__ import annotations

from vifdoctor.sources.neutron_api import inactive_possible

MOVED = {"vm-moved"}
HOSTS = {"vm-moved": "c1", "vm-home": "c1", "vm-away": "c2", "vm-migrating": "c1"}


def port(device: str, host: str = "c1", profile: object = None) -> dict:
    return {
        "id": f"p-{device}",
        "device_id": device,
        "binding:host_id": host,
        "binding:profile": profile or {},
    }


def test_a_port_at_home_with_no_migration_is_not_read() -> None:
    assert not inactive_possible(port("vm-home"), MOVED, HOSTS)


def test_each_sign_of_a_move_selects_the_port() -> None:
    assert inactive_possible(port("vm-moved"), MOVED, HOSTS)  # os-migrations
    assert inactive_possible(port("vm-migrating", profile={"migrating_to": "c2"}), MOVED, HOSTS)
    assert inactive_possible(port("vm-away"), MOVED, HOSTS)  # Nova says c2, Neutron c1
    assert inactive_possible(port("vm-unknown"), MOVED, HOSTS)  # Nova does not list it
    assert inactive_possible(port("vm-home", host=""), MOVED, HOSTS)  # no ACTIVE host


def test_an_empty_or_odd_profile_is_no_sign() -> None:
    assert not inactive_possible(port("vm-home", profile={"migrating_to": ""}), MOVED, HOSTS)
    assert not inactive_possible(port("vm-home", profile="text"), MOVED, HOSTS)
