"""Reviewing what the crawls found: Datasette metadata, report, export, evidence bundles."""
