"""fedinfra: the Pulumi side of fedstack. It prepares hosts and knows nothing of FeatureCloud."""
