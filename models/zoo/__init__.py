"""The zoo: every module in this package is one model that ends with its spec and a
`@register`. Infrastructure (registry, tasks, data, training, cards) lives in `models/`."""
