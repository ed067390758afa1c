"""Text front end: ``normalize`` (English normalization) and ``tokenizer`` (char, phn, bpe over a token list)."""
