"""Read the label<TAB>tokens TSV files that preprocess and split write."""

import sys


def read_tokens_tsv(path):
    """Return (labels, documents) from a TSV with header label<TAB>tokens (tokens space-joined)."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    if not lines or lines[0] != "label\ttokens":
        sys.exit(f"{path}: expected header 'label\\ttokens'")
    labels, docs = [], []
    for line in lines[1:]:
        if line.strip():
            label, _, tokens = line.partition("\t")
            labels.append(label)
            docs.append(tokens)
    return labels, docs
