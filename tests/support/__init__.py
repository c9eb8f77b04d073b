"""What the test modules share besides fixtures: test modules import from here, never from each
other or from a conftest.py (pytest loads those itself, for their fixtures)."""
