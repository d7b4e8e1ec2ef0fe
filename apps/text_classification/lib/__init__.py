"""Code shared by the text_classification modules (listed in their `source:`)."""
