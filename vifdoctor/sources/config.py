"""Settings read from the operator's own OpenStack config files, with oslo.config.

``--neutron-config-file`` may be given several times; as with OpenStack's
``--config-file``, later files win. Only the options vifdoctor needs are
registered; the rest of each file is ignored.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from vifdoctor.errors import VifdoctorError
from vifdoctor.sources.database import scrub

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a neutron.conf is kilobytes; refuse to read a disk


def check_config_files(files: list[str], what: str = "config file") -> None:
    """Each file is a regular, bounded, parseable config file: else one clear error.

    A parse error names the file and line number but never shows the line: it may be
    a ``connection`` holding a password. Directories, FIFOs, devices and symlink loops
    are refused before oslo.config opens them.
    """
    if not files:
        return
    from oslo_config import cfg  # only where a config file is read (start-up, issue 14)

    for path in files:
        try:
            info = os.stat(path)
        except OSError as exc:
            raise VifdoctorError(f"{what} {path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):
            raise VifdoctorError(f"{what} {path} is not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise VifdoctorError(f"{what} {path} is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            cfg.ConfigParser(path, {}).parse()
        except cfg.ParseError as exc:
            raise VifdoctorError(
                f"cannot parse {what} {path}, line {exc.lineno}: {exc.msg} (the line is not "
                "shown: it may hold a password)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise VifdoctorError(
                f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or type(exc).__name__}"
            ) from None


@dataclass(frozen=True)
class NeutronSettings:
    connection: str | None = None
    firewall_driver: str | None = None  # None: not set in any file
    firewall_driver_file: str | None = None  # the file that set it (the last one)
    enable_security_group: bool | None = None
    agent_down_time: int | None = None


def _file_setting(files: list[str], section: str, name: str) -> tuple[str | None, str | None]:
    """The raw value of one option and the last file that sets it."""
    from oslo_config import cfg  # only where a config file is read (start-up, issue 14)

    value = where = None
    for path in files:
        sections: dict = {}
        try:
            cfg.ConfigParser(path, sections).parse()
        except cfg.ParseError as exc:
            raise VifdoctorError(
                f"cannot parse config file {path}, line {exc.lineno}: {exc.msg}"
            ) from None
        for key, values in sections.get(section, {}).items():
            if key == name and values:
                value, where = values[-1], path
    return value, where


def read_neutron_config(files: list[str]) -> NeutronSettings:
    """Read ``[database] connection``, ``[securitygroup]`` and ``agent_down_time``."""
    if not files:
        return NeutronSettings()
    from oslo_config import cfg  # only where a config file is read (start-up, issue 14)

    check_config_files(files)
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("connection", secret=True)], group="database")
    conf.register_opts(
        [cfg.StrOpt("firewall_driver"), cfg.BoolOpt("enable_security_group")],
        group="securitygroup",
    )
    conf.register_opts([cfg.IntOpt("agent_down_time")])
    try:
        conf(args=[], project="neutron", default_config_files=list(files), use_env=False)
    except cfg.ConfigFilesNotFoundError as exc:
        raise VifdoctorError(
            f"config file not found or unreadable: {', '.join(exc.config_files)}"
        ) from None
    except (cfg.ConfigFileParseError, cfg.Error, ValueError) as exc:
        raise VifdoctorError(f"cannot read config files: {scrub(str(exc))}") from None
    try:
        sg = conf.securitygroup
        firewall, enable_sg = sg.firewall_driver, sg.enable_security_group
        connection, down_time = conf.database.connection, conf.agent_down_time
    except (cfg.Error, ValueError) as exc:
        raise VifdoctorError(f"bad value in config files: {scrub(str(exc))}") from None
    _, firewall_file = _file_setting(files, "securitygroup", "firewall_driver")
    return NeutronSettings(
        connection=connection,
        firewall_driver=firewall,
        firewall_driver_file=firewall_file,
        enable_security_group=enable_sg,
        agent_down_time=down_time,
    )
