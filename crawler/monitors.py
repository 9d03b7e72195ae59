"""Run-level monitors, the Spidermon way: checked when the spider closes.

Spidermon's own monitors, configured in crawler/settings.py: at least one listing
(``SPIDERMON_MIN_ITEMS``), the finish reason ``finished``, and field coverage (most
listings have a title; at least half a price). Failures are logged by Spidermon's
report and recorded in the run's stats (``stats.MONITORS_FAILED``), which `cfmon
crawl` prints as a warning: a site that still yields listings but lost its titles
or prices has most likely changed its markup.
"""

from __future__ import annotations

from spidermon.contrib.scrapy.monitors import (
    FieldCoverageMonitor,
    FinishReasonMonitor,
    ItemCountMonitor,
)
from spidermon.core.actions import Action
from spidermon.core.suites import MonitorSuite

from crawler.stats import MONITORS_FAILED


class RecordFailures(Action):
    """Puts the names of failed monitors into the crawl's stats (stored with the run)."""

    def run_action(self) -> None:
        failed = [str(result.monitor.name) for result in self.result.monitors_failed_results]
        self.data.crawler.stats.set_value(MONITORS_FAILED, "; ".join(failed))


class RunMonitors(MonitorSuite):
    monitors = [ItemCountMonitor, FinishReasonMonitor, FieldCoverageMonitor]
    monitors_failed_actions = [RecordFailures]
