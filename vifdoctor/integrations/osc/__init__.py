"""``openstack vifdoctor ...``: vifdoctor's commands inside python-openstackclient.

:mod:`.plugin` is the module OSC loads from the ``openstack.cli.extension`` entry
point; :mod:`.commands` holds the cliff commands registered under
``openstack.vifdoctor.v1`` (pyproject.toml).
"""
