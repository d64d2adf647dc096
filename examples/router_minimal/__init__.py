"""router_minimal: the smallest bot using StudentFeaturizer + RouteClassifier."""
