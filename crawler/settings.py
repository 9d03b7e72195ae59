"""Every Scrapy and cfmon setting cfmon uses, in one place.

cfmon's own settings share the ``CFMON_`` prefix; the config file's ``[crawl]``
table overrides the politeness ones (see ``crawl_settings``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.settings import default_settings as _scrapy_defaults

from crawler import __version__

if TYPE_CHECKING:
    from crawler.config import Config

BOT_NAME = "cfmon"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# -- cfmon -------------------------------------------------------------------------
CFMON_CONFIG = None  # a crawler.config.Config, set by `cfmon crawl`
CFMON_DB = None  # path of the SQLite database
CFMON_SITES = None  # names of the sites to crawl; None = all
CFMON_IMAGES_ENABLED = True
CFMON_IMAGES_PER_LISTING = 3  # photos fetched and matched per listing, the main one first
CFMON_IMAGE_DECODES = 2  # images decoded at once (memory: see matchers.images.MAX_PIXELS)
# Photos waiting for analysis before the crawl pauses for them (pipelines/images.py).
CFMON_IMAGE_BACKLOG = 64
# Worker processes analysing photos (pipelines/analysis.py): None = one per core,
# started once CFMON_IMAGE_PROCESSES_AFTER photos wait for analysis (a small crawl does
# not pay for starting them); a number = that many, from the first photo; 0 = none, in
# the reactor's thread pool.
CFMON_IMAGE_PROCESSES = None
CFMON_IMAGE_PROCESSES_AFTER = 32
CFMON_IMAGE_CACHE = 2000  # image results remembered for listings that show them again
CFMON_IMAGE_CONTENT_CACHE = 500  # analyses remembered by content, for the same bytes at other URLs
CFMON_STORE_BATCH_SIZE = 50  # listings per write transaction
CFMON_STORE_FLUSH_SECONDS = 2.0  # ... or sooner, so a slow crawl still lands steadily
CFMON_STORE_LOCK_WAIT = 60.0  # seconds a write waits for another program's write lock
CFMON_RETRY_AFTER_ENABLED = True
CFMON_RETRY_AFTER_MAX = 120.0  # seconds: a longer Retry-After is cut to this
CFMON_RETRY_AFTER_TIMES = 3
CFMON_SITE_MAX_REQUESTS = 20_000  # requests per site per crawl (SiteBudgetMiddleware)
CFMON_SITE_MAX_MINUTES = 120.0  # minutes per site per crawl
CLOSESPIDER_TIMEOUT = 6 * 3600  # seconds for the whole crawl: the next cron run must get in
CFMON_PROGRESS = False  # the live table on a terminal; `cfmon crawl` turns it on for a TTY
CFMON_PROGRESS_INTERVAL = 0.5  # seconds between redraws

# -- politeness --------------------------------------------------------------------
USER_AGENT = f"cfmon/{__version__} (+https://github.com/cfmon/cfmon; counterfeit monitor)"
ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
# What one page yields, processed at once. Scrapy starts this many asyncio tasks for
# every response a callback handles (100 by default: ~1 ms a page, for the one listing
# a product page yields); a results page's cards still go through the pipelines 16 at
# a time, more than its site's downloads let run.
CONCURRENT_ITEMS = 16
DOWNLOAD_DELAY = 0.5
DOWNLOAD_TIMEOUT = 30
RETRY_TIMES = 2
COOKIES_ENABLED = False
# A listing page or image larger than this is not a page or image we want.
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024

DOWNLOADER_MIDDLEWARES = {
    # Before Scrapy's RetryMiddleware (550), which would retry a 429 at once.
    "crawler.middlewares.RetryAfterMiddleware": 560,
    # Early, so that nothing is sent to a refused address, robots.txt included.
    "crawler.middlewares.PrivateAddressMiddleware": 50,
    "crawler.middlewares.SiteBudgetMiddleware": 60,
}
# The address connected to is the address vetted (see middlewares.VettingResolver).
# Scrapy 2.19 renamed DNS_RESOLVER to TWISTED_DNS_RESOLVER (and warns on the old name).
if hasattr(_scrapy_defaults, "TWISTED_DNS_RESOLVER"):
    TWISTED_DNS_RESOLVER = "crawler.middlewares.VettingResolver"
else:  # pragma: no cover - Scrapy < 2.19
    DNS_RESOLVER = "crawler.middlewares.VettingResolver"
REDIRECT_MAX_TIMES = 10
DUPEFILTER_CLASS = "crawler.dupefilter.LoopReportingDupeFilter"

# -- pipeline ----------------------------------------------------------------------
ITEM_PIPELINES = {
    "crawler.pipelines.images.ListingImagesPipeline": 100,
    "crawler.pipelines.match.MatchPipeline": 200,
    "crawler.pipelines.store.StorePipeline": 300,
}
# Images redirect often (CDNs); follow them.
MEDIA_ALLOW_REDIRECTS = True

# -- run-level monitors (Spidermon; see crawler/monitors.py) ------------------------
SPIDERMON_ENABLED = True
EXTENSIONS = {"spidermon.contrib.scrapy.extensions.Spidermon": 500,
              "crawler.progress.ProgressDisplay": 600}
SPIDERMON_SPIDER_CLOSE_MONITORS = ("crawler.monitors.RunMonitors",)
SPIDERMON_MIN_ITEMS = 1
SPIDERMON_EXPECTED_FINISH_REASONS = ["finished"]
SPIDERMON_ADD_FIELD_COVERAGE = True
SPIDERMON_FIELD_COVERAGE_SKIP_NONE = True  # a missing title is None: not covered
SPIDERMON_FIELD_COVERAGE_RULES = {"Listing/title": 0.9, "Listing/price": 0.5}

LOG_LEVEL = "INFO"
# Nothing of a crawl listens on a port: Scrapy's telnet console and remote control are off.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False


def crawl_settings(config: Config, db_path: str, sites: list[str] | None = None,
                   **overrides: Any) -> dict[str, Any]:
    """The settings of one `cfmon crawl`: these defaults, the config's [crawl] table,
    then ``overrides``."""
    settings = {k: v for k, v in globals().items() if k.isupper()}
    settings.update(CFMON_CONFIG=config, CFMON_DB=db_path, CFMON_SITES=sites)
    crawl = config.crawl
    if crawl.user_agent:
        settings["USER_AGENT"] = crawl.user_agent
    if crawl.download_delay is not None:
        settings["DOWNLOAD_DELAY"] = crawl.download_delay
        settings["AUTOTHROTTLE_START_DELAY"] = max(crawl.download_delay, 0.01)
    if crawl.concurrent_requests_per_domain is not None:
        settings["CONCURRENT_REQUESTS_PER_DOMAIN"] = crawl.concurrent_requests_per_domain
    if crawl.timeout is not None:
        settings["DOWNLOAD_TIMEOUT"] = crawl.timeout
    if crawl.site_max_requests is not None:
        settings["CFMON_SITE_MAX_REQUESTS"] = crawl.site_max_requests
    if crawl.site_max_minutes is not None:
        settings["CFMON_SITE_MAX_MINUTES"] = crawl.site_max_minutes
    if crawl.max_minutes is not None:
        settings["CLOSESPIDER_TIMEOUT"] = crawl.max_minutes * 60
    if crawl.database_wait is not None:
        settings["CFMON_STORE_LOCK_WAIT"] = crawl.database_wait
    if crawl.analysis_processes is not None:
        settings["CFMON_IMAGE_PROCESSES"] = crawl.analysis_processes
    settings["AUTOTHROTTLE_ENABLED"] = crawl.autothrottle
    settings["ROBOTSTXT_OBEY"] = crawl.obey_robots
    settings.update(overrides)
    return settings
