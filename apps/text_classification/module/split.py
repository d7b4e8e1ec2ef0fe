"""Split a label<TAB>... TSV into train and test sets, stratified by label, with a seeded shuffle."""

import argparse
import random
import sys


def read_tsv(path):
    """Return (header, rows) of a TSV file, skipping blank lines."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    if not lines or not lines[0].startswith("label\t"):
        sys.exit(f"{path}: expected a header starting with 'label<TAB>'")
    return lines[0], [line for line in lines[1:] if line.strip()]


def stratified_split(rows, test_fraction, seed):
    """Shuffle each label's rows with one seeded RNG and hold out test_fraction of each label."""
    rng = random.Random(seed)
    by_label = {}
    for row in rows:
        by_label.setdefault(row.split("\t", 1)[0], []).append(row)
    train, test = [], []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n_test = round(len(group) * test_fraction)
        if len(group) > 1:
            n_test = min(max(n_test, 1), len(group) - 1)
        test.extend(group[:n_test])
        train.extend(group[n_test:])
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(header + "\n")
        f.writelines(row + "\n" for row in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--test_fraction", type=float, default=0.2, help="share of each label held out for test")
    parser.add_argument("--seed", type=int, default=13, help="random seed of the shuffle")
    parser.add_argument("data", help="input TSV with a label column first")
    parser.add_argument("train", help="output TSV: training rows")
    parser.add_argument("test", help="output TSV: test rows")
    args = parser.parse_args(argv)
    if not 0.0 < args.test_fraction < 1.0:
        parser.error("--test_fraction must be between 0 and 1 (exclusive)")

    header, rows = read_tsv(args.data)
    train, test = stratified_split(rows, args.test_fraction, args.seed)
    write_tsv(args.train, header, train)
    write_tsv(args.test, header, test)
    print(f"split: {len(train)} train rows, {len(test)} test rows", file=sys.stderr)


if __name__ == "__main__":
    main()
