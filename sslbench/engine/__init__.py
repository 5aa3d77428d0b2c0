"""Training machinery: the shared loop and weight files."""
