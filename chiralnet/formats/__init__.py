"""Conversions to and from files and other libraries: JSON graphs, TOML scenarios, the QuTiP export
(files are written atomically through :mod:`chiralnet.files`)."""
