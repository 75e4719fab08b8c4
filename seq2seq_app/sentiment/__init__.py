"""Many-to-one: sentiment scored as each token of a review arrives."""
