"""Training infrastructure shared by every ttsrl model and alignment method.

* :mod:`ttsrl.train.distributed` -- process groups from torchrun or Slurm srun; rank and device helpers
* :mod:`ttsrl.train.sampler`     -- length-bucketed batches bounded by padded tokens, sharded over ranks
* :mod:`ttsrl.train.trainer`     -- the training loop: DDP, AMP, accumulation, checkpoints, exact resume

Options and checkpoint files are read and written by :mod:`ttsrl.utils.config` and
:mod:`ttsrl.utils.checkpoint`, which the model files use to load themselves without this package.
"""
