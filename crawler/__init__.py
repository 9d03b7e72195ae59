"""cfmon's crawling side: config, the generic Scrapy spider, extraction, pipelines, store, CLI."""

__version__ = "0.1.0"
