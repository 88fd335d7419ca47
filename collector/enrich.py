"""Turns a validated beacon plus the request's IP and user agent into one log line.

This is the only place that sees the IP and user agent. It keeps what the log contract
allows (browser, OS, device, country, a salted visitor id) and forgets the rest.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Protocol

from collector.beacon import Payload
from collector.geo import CountryLookup
from collector.paths import PageUrl, parse_page_url
from collector.referrer import Referral, Referrers
from collector.useragent import Agent, AgentParser
from footfall import contract as c
from footfall.config import Config
from footfall.errors import BeaconError


@dataclass(frozen=True, slots=True)
class Dropped:
    """A deliberate drop: answered 202 so the sender learns nothing."""

    reason: str


@dataclass(frozen=True, slots=True)
class Enriched:
    """The lines to write (one per configured site the beacon names) and what was changed."""

    lines: list[c.LogLine]
    adjusted: tuple[str, ...]


#: A comma list in `d` named sites that are not configured: the event went to the others.
UNKNOWN_SITE_SKIPPED = "unknown-site-skipped"


class Visitors(Protocol):
    """Where visitor ids come from: `collector.identity.VisitorIds` in the collector; the demo,
    whose generated events carry ids already, passes its own."""

    def visitor(self, site: str, ip: str, user_agent: str, now_ms: int) -> str: ...


class Enricher:
    def __init__(self, config: Config, visitors: Visitors) -> None:
        self.sites = {s.domain: s for s in config.sites}
        self.agents = AgentParser()
        self.countries = CountryLookup(config.collector.geoip_database)
        self.referrers = Referrers(spam_filter=config.collector.referrer_spam)
        self.visitors = visitors
        self.exclude = tuple(config.collector.exclude_paths)
        self._own_hosts = {d: frozenset({d, f"www.{d}"}) for d in self.sites}

    def sites_for(self, domains: tuple[str, ...]) -> tuple[list[str], bool]:
        """The configured sites among `domains` (already lower case, without "www."), and
        whether any was skipped; none configured is a 400."""
        found = [d for d in domains if d in self.sites]
        if not found:
            raise BeaconError(400, "unknown site")
        return found, len(found) < len(domains)

    def lines(self, payload: Payload, ip: str, user_agent: str, now_ms: int) -> Enriched | Dropped:
        agent = self.agents.parse(user_agent)
        try:
            page = parse_page_url(payload.u, hash_mode=payload.h)
        except ValueError as exc:
            raise BeaconError(400, f"'u' is not a page URL: {exc}") from None
        # Plausible takes the site from the page's host when `d` is absent.
        domains = payload.d or (str(page.hostname).removeprefix("www."),)
        sites, skipped = self.sites_for(domains)
        if agent.bot is not None:
            return Dropped(agent.bot)
        if any(fnmatch.fnmatchcase(page.path, glob) for glob in self.exclude):
            return Dropped("excluded-path")
        adjusted = payload.adjusted + ((UNKNOWN_SITE_SKIPPED,) if skipped else ())
        out = []
        for site in sites:
            hosts = self._own_hosts[site]
            if page.hostname and page.hostname not in hosts:
                # Usually the page is on the site's own host: no new set, and the referrer
                # classifier's cache keyed by the set finds it at once.
                hosts = hosts | {page.hostname}
            referral = self.referrers.classify(payload.r, hosts)
            if referral.spam:
                return Dropped("referrer-spam")
            out.append(self._line(site, payload, page, referral, agent, ip, user_agent, now_ms))
        return Enriched(out, adjusted)

    def _line(self, site: str, payload: Payload, page: PageUrl, referral: Referral,
              agent: Agent, ip: str, user_agent: str, now_ms: int) -> c.LogLine:
        name = payload.n
        interactive = False if payload.i is False or name == c.ENGAGEMENT else None
        revenue = payload.revenue
        return c.LogLine(
            v=c.VERSION,
            id=c.new_id(now_ms),
            ts=c.format_ts(now_ms),
            site=site,
            name=name,
            path=page.path,
            visitor=self.visitors.visitor(site, ip, user_agent, now_ms),
            hostname=page.hostname,
            referrer=referral.referrer,
            # Campaign links with no referrer (email, apps) still name a source.
            source=referral.source or page.utm_source,
            utm_source=page.utm_source,
            utm_medium=page.utm_medium,
            utm_campaign=page.utm_campaign,
            utm_term=page.utm_term,
            utm_content=page.utm_content,
            browser=agent.browser,
            browser_version=agent.browser_version,
            os=agent.os,
            os_version=agent.os_version,
            device=agent.device,
            country=self.countries.country(ip, payload.tz),
            screen_width=payload.w,
            props=payload.p,
            interactive=interactive,
            engaged_ms=payload.e,
            scroll_pct=payload.sd,
            revenue_amount=revenue.amount if revenue else None,
            revenue_currency=revenue.currency if revenue else None,
        )
