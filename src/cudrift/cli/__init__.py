"""Command line interface (``cudrift``)."""
