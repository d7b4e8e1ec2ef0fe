"""Train a bag-of-words SGD linear classifier on a label<TAB>tokens TSV and pickle the fitted pipeline."""

import argparse
import pickle
import sys
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from text_classification.lib.tsv import read_tokens_tsv

PICKLE_PROTOCOL = 4


def build_pipeline(num_epochs, alpha, ngram_max):
    # Tokens are already cleaned and space-joined: split on spaces only and keep their case.
    vectorizer = CountVectorizer(token_pattern=r"[^ ]+", lowercase=False, ngram_range=(1, ngram_max))
    classifier = SGDClassifier(max_iter=num_epochs, random_state=0, tol=None, alpha=alpha)
    return Pipeline([("bow", vectorizer), ("sgd", classifier)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num_epochs", type=int, default=5, help="passes of SGD over the training data")
    parser.add_argument("--alpha", type=float, default=0.0001, help="L2 regularisation strength")
    parser.add_argument("--ngram_max", type=int, default=1, help="use word n-grams of length 1..ngram_max")
    parser.add_argument("train_data", help="input TSV with header label<TAB>tokens")
    parser.add_argument("model", help="output pickle of the fitted sklearn Pipeline")
    args = parser.parse_args(argv)
    if args.num_epochs < 1 or args.ngram_max < 1 or args.alpha <= 0:
        parser.error("--num_epochs and --ngram_max must be >= 1 and --alpha > 0")

    labels, docs = read_tokens_tsv(args.train_data)
    if len(set(labels)) < 2:
        sys.exit(f"{args.train_data}: need at least two labels to train a classifier")
    model = build_pipeline(args.num_epochs, args.alpha, args.ngram_max)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(docs, labels)
    # CountVectorizer memoises id(stop_words) in _stop_words_id, a memory address that changes from run to run;
    # it is only a validation cache (read back with a default), so drop it to keep the pickle byte-identical.
    vars(model.named_steps["bow"]).pop("_stop_words_id", None)
    with open(args.model, "wb") as f:
        pickle.dump(model, f, protocol=PICKLE_PROTOCOL)
    vocabulary = len(model.named_steps["bow"].vocabulary_)
    print(f"bow_model: {len(docs)} documents, {vocabulary} features, classes {sorted(set(labels))}", file=sys.stderr)


if __name__ == "__main__":
    main()
