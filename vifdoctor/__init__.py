"""vifdoctor: find, explain and safely repair Neutron bindings that make Nova plug VMs wrong."""

__version__ = "0.1.0"
