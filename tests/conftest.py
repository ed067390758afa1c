"""Test-wide settings: one torch thread per test process.

Tiny models spend their time in thread synchronisation when several threads share two cores;
tests run with one thread (tests that need more set it themselves).
"""
import torch

torch.set_num_threads(1)
