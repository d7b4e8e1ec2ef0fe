"""Train a bag-of-words SGD linear classifier on a label<TAB>tokens TSV and pickle the fitted pipeline.

With --scores, also write its accuracy as JSON (on --valid_data when given, else on the training data).
"""

import argparse
import json
import pickle
import sys
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from text_classification.lib.tsv import read_tokens_tsv

PICKLE_PROTOCOL = 4
LOSSES = ("hinge", "log_loss", "modified_huber")


def build_pipeline(num_epochs, alpha, ngram_max, loss="hinge"):
    # Tokens are already cleaned and space-joined: split on spaces only and keep their case.
    vectorizer = CountVectorizer(token_pattern=r"[^ ]+", lowercase=False, ngram_range=(1, ngram_max))
    classifier = SGDClassifier(max_iter=num_epochs, random_state=0, tol=None, alpha=alpha, loss=loss)
    return Pipeline([("bow", vectorizer), ("sgd", classifier)])


def write_scores(model, valid_data, train_labels, train_docs, path):
    """Accuracy on the validation rows (or the training rows): what a sweep's select compares."""
    labels, docs = read_tokens_tsv(valid_data) if valid_data else (train_labels, train_docs)
    correct = sum(1 for label, predicted in zip(labels, model.predict(docs), strict=True) if label == predicted)
    scores = {"accuracy": round(correct / len(labels), 6) if labels else 0.0, "n": len(labels),
              "on": "validation" if valid_data else "training"}
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(scores, f, sort_keys=True)
        f.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num_epochs", type=int, default=5, help="passes of SGD over the training data")
    parser.add_argument("--alpha", type=float, default=0.0001, help="L2 regularisation strength")
    parser.add_argument("--ngram_max", type=int, default=1, help="use word n-grams of length 1..ngram_max")
    parser.add_argument("--loss", default="hinge", choices=LOSSES, help="the SGD loss function")
    parser.add_argument("--valid_data", help="input TSV to measure accuracy on (for --scores)")
    parser.add_argument("--scores", help="output JSON with the accuracy")
    parser.add_argument("train_data", help="input TSV with header label<TAB>tokens")
    parser.add_argument("model", help="output pickle of the fitted sklearn Pipeline")
    args = parser.parse_args(argv)
    if args.num_epochs < 1 or args.ngram_max < 1 or args.alpha <= 0:
        parser.error("--num_epochs and --ngram_max must be >= 1 and --alpha > 0")

    labels, docs = read_tokens_tsv(args.train_data)
    if len(set(labels)) < 2:
        sys.exit(f"{args.train_data}: need at least two labels to train a classifier")
    model = build_pipeline(args.num_epochs, args.alpha, args.ngram_max, args.loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(docs, labels)
    # CountVectorizer memoises id(stop_words) in _stop_words_id, a memory address that changes from run to run;
    # it is only a validation cache (read back with a default), so drop it to keep the pickle byte-identical.
    vars(model.named_steps["bow"]).pop("_stop_words_id", None)
    with open(args.model, "wb") as f:
        pickle.dump(model, f, protocol=PICKLE_PROTOCOL)
    if args.scores:
        write_scores(model, args.valid_data, labels, docs, args.scores)
    vocabulary = len(model.named_steps["bow"].vocabulary_)
    print(f"bow_model: {len(docs)} documents, {vocabulary} features, classes {sorted(set(labels))}", file=sys.stderr)


if __name__ == "__main__":
    main()
