"""Training infrastructure shared by every ttsrl model and alignment method.

* :mod:`ttsrl.train.config`      -- YAML as argparse defaults, dataclass options, name->class registries
* :mod:`ttsrl.train.distributed` -- process groups from torchrun or Slurm srun; rank and device helpers
* :mod:`ttsrl.train.sampler`     -- length-bucketed batches bounded by padded tokens, sharded over ranks
* :mod:`ttsrl.train.trainer`     -- the training loop: DDP, AMP, accumulation, checkpoints, exact resume
"""
