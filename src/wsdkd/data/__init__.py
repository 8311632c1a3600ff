"""Datasets: the built-in synthetic one, real-dataset loaders, and the manifest every later stage reads."""
