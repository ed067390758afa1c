"""Kaldi data directories: ``datadir`` (files, DataDir), ``audio`` (wav.scp I/O), ``arrays``
(kaldiio ark/scp), ``validate``, ``ops`` (fix/split/subset/combine), ``seedtts`` (test lists),
``toy`` (a tiny synthetic dir). Import the submodules; nothing heavy is imported here."""
