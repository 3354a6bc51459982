"""Front ends that fit vifdoctor into the operator's own tools, beside ``cmd/``.

* :mod:`.prometheus`: the audit as node_exporter textfile-collector metrics;
* :mod:`.neutron_status`: checks for ``neutron-status upgrade check``;
* :mod:`.osc`: ``openstack vifdoctor ...`` commands for python-openstackclient;
* :mod:`.logs`: OpenStack-style ``--debug`` / ``--log-file`` logging, passwords masked.

Each calls :mod:`vifdoctor.api` only, never ``vifdoctor.cmd``; each imports its
framework lazily or only where that framework runs, so the library stays light.
"""
