"""The openstack client's view of vifdoctor: its API name, version option and client.

OSC reads these module attributes for every ``openstack.cli.extension`` plugin:
it adds :func:`build_option_parser`'s options to its global parser, picks the
command group ``openstack.<API_NAME>.v<version>`` (here ``openstack.vifdoctor.v1``)
and makes :func:`make_client` the factory behind ``client_manager.vifdoctor``.
vifdoctor has no service endpoint of its own: its "client" is OSC's authenticated
openstacksdk connection, which API mode reads Neutron (and Nova) through.
"""

from __future__ import annotations

import argparse
from typing import Any

API_NAME = "vifdoctor"
API_VERSION_OPTION = "os_vifdoctor_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = ("1",)


def make_client(instance: Any) -> Any:
    """OSC's openstacksdk connection, authenticated by OSC (clouds.yaml, --os-*, OS_*)."""
    return instance.sdk_connection


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The version option every OSC plugin declares (only 1 exists)."""
    from osc_lib import utils

    parser.add_argument(
        "--os-vifdoctor-api-version",
        metavar="<vifdoctor-api-version>",
        default=utils.env("OS_VIFDOCTOR_API_VERSION"),
        help="vifdoctor command set version, default="
        + DEFAULT_API_VERSION
        + " (Env: OS_VIFDOCTOR_API_VERSION)",
    )
    return parser
