"""Conversions to and from files and other libraries: JSON graphs, TOML scenarios, the QuTiP export."""
