"""Evaluate a pickled text classifier on a label<TAB>tokens TSV; writes accuracy and per-class F1 as JSON."""

import argparse
import json
import pickle
import sys

from sklearn.metrics import accuracy_score, f1_score

from text_classification.lib.tsv import read_tokens_tsv


def evaluate(model, labels, docs):
    predicted = list(model.predict(docs))
    classes = sorted(set(labels) | set(predicted))
    per_class = f1_score(labels, predicted, labels=classes, average=None, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 6),
        "macro_f1": round(float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)), 6),
        "per_class": {label: round(float(score), 6) for label, score in zip(classes, per_class, strict=True)},
        "n_test": len(labels),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="input pickle of a fitted classifier with predict()")
    parser.add_argument("test_data", help="input TSV with header label<TAB>tokens")
    parser.add_argument("report", help="output JSON report")
    args = parser.parse_args(argv)

    labels, docs = read_tokens_tsv(args.test_data)
    if not labels:
        sys.exit(f"{args.test_data}: no test rows")
    with open(args.model, "rb") as f:
        model = pickle.load(f)  # trusted: the model is an output of this pipe
    report = evaluate(model, labels, docs)
    with open(args.report, "w", encoding="utf-8", newline="\n") as f:
        json.dump(report, f, sort_keys=True, indent=2)
        f.write("\n")
    print(f"evaluate: accuracy {report['accuracy']:.3f} on {report['n_test']} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
