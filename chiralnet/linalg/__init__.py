"""Shared linear algebra: CSR helpers, cascade order and forward substitution, triangular Lyapunov,
stability, small dense matrix exponentials. Arrays in, arrays out; no graphs, no models."""
