"""Tokenise labelled texts (regex, lower-case, stop words, short tokens) into a label<TAB>tokens TSV."""

import argparse
import re
import sys

TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def read_labelled_tsv(path, text_column="text"):
    """Return (label, text) pairs from a TSV whose header is `label<TAB><text_column>`."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    if not lines or lines[0].split("\t") != ["label", text_column]:
        sys.exit(f"{path}: expected header 'label\\t{text_column}'")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or not label:
            sys.exit(f"{path}:{number}: expected 'label<TAB>{text_column}'")
        rows.append((label, text))
    return rows


def read_stopwords(path):
    with open(path, encoding="utf-8") as f:
        return {word.strip().lower() for word in f if word.strip() and not word.startswith("#")}


def tokenize(text, stopwords, keep_case=False, min_token_length=2):
    tokens = []
    for token in TOKEN_RE.findall(text):
        if not keep_case:
            token = token.lower()
        if len(token) < min_token_length or token.lower() in stopwords:
            continue
        tokens.append(token)
    return tokens


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep_case", action="store_true", help="do not lower-case tokens")
    parser.add_argument("--min_token_length", type=int, default=2, help="drop tokens shorter than this")
    parser.add_argument("raw", help="input TSV with header label<TAB>text")
    parser.add_argument("stopwords", help="stop words, one per line")
    parser.add_argument("cleaned", help="output TSV with header label<TAB>tokens")
    args = parser.parse_args(argv)

    stopwords = read_stopwords(args.stopwords)
    rows = read_labelled_tsv(args.raw)
    kept = 0
    with open(args.cleaned, "w", encoding="utf-8", newline="\n") as out:
        out.write("label\ttokens\n")
        for label, text in rows:
            tokens = tokenize(text, stopwords, args.keep_case, args.min_token_length)
            if tokens:
                out.write(f"{label}\t{' '.join(tokens)}\n")
                kept += 1
    print(f"preprocess: {kept} of {len(rows)} rows kept, {len(stopwords)} stop words", file=sys.stderr)


if __name__ == "__main__":
    main()
