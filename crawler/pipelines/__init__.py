"""Item pipelines in crawl order: images (fetch + hash), match (score), store (write)."""
