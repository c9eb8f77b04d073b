"""Stand-ins for infrastructure that cannot run on the development and CI machines."""
