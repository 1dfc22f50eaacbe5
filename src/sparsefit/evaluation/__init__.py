"""Held-out evaluation: IR metrics, the BM25 baseline, reports."""
