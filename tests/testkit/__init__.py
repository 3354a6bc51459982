"""The test-support package: real databases, real servers and the clouds tests write.

- ``dbfixtures``: one uniquely named database per test on MariaDB, PostgreSQL, SQLite,
  with the real neutron 29.0.0 and nova 34.0.0 schemas (``scripts/build-schemas``).
- ``cloudfactory``, ``repairkit``, ``novakit``: clouds, rows and CLI runs for the tests.
- ``hostlab``: compute hosts in network namespaces (private OVS, nova's own plug).
- ``neutron_server``, ``nova_server``: the real neutron and nova APIs under gunicorn.
- ``cells``: Nova API databases' ``cell_mappings`` (the demo needs none).
"""
