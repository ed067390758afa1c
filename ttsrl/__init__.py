"""ttsrl: aligning text-to-speech models to rewards and preferences."""

__version__ = "0.1.0"
