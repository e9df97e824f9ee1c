"""Evaluation protocols (CLIC, BAPPS 2AFC, MOS correlations) and HTML reports."""
