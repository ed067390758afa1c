"""Acoustic features: ``mel`` (log-mel), ``stats`` (global MVN), ``f0`` (F0, F0 variance, energy), ``dump`` (data dir -> ark/scp)."""
