/*
 * footfall tracker: the readable source of tracker.js.
 *
 * Edit this file, run `make tracker` (collector/static/build.py), and commit both files.
 * tests/test_tracker_budget.py checks that tracker.js is a fresh build of this file and that
 * it stays within 1,024 bytes under gzip -9. docs/beacon.md documents what it sends, key by
 * key; change the two together.
 *
 * Embed:
 *   <script defer src="https://stats.example.com/tracker.js" data-domain="example.com"></script>
 *
 * Attributes of that script tag:
 *   data-domain              required: the site as configured in the collector
 *   data-api                 the beacon endpoint (default: the script's origin + /api/event)
 *   data-hash                hash routing: count `hashchange` too, keep the #fragment in `u`
 *                            and send `h: 1` so the collector keeps it in the path
 *   data-outbound="false"    send no "Outbound Link: Click" events
 *   data-downloads="false"   send no "File Download" events
 *
 * Privacy: no cookies, no storage writes, no identifiers. The only thing it reads from storage
 * is localStorage.footfall_ignore, which site owners set to exclude their own visits.
 *
 * Written for the budget: document and location, used often, are parameters of the wrapper
 * so they mangle to one letter; optional JSON keys are left undefined rather than deleted;
 * and features beyond the list were weighed in bytes (see docs/beacon.md).
 */
((doc, loc) => {
  const script = doc.currentScript // set for classic scripts, with or without defer/async
  const opts = script.dataset
  const api = opts.api || new URL('/api/event', script.src)
  const domain = opts.domain
  const hashMode = 'hash' in opts ? 1 : undefined // sent as h: 1, Plausible's hash mode
  const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone

  // Never count the owner's own testing: local hosts, files, automated browsers, and browsers
  // where localStorage.footfall_ignore is set (reading storage can throw; we never write it).
  let ignored
  try {
    ignored = localStorage.footfall_ignore
  } catch {}
  // file: pages (and about:, data:) have an empty hostname, which the pattern matches.
  ignored ||= navigator.webdriver || /^(127\.|\[::1\]|$)|localhost$/.test(loc.hostname)

  // One beacon. Keys whose value is undefined drop out of the JSON, so optional keys are simply
  // absent. A string body goes out as text/plain;charset=UTF-8, a "simple" request that needs
  // no CORS preflight. sendBeacon survives the page unloading; fetch with keepalive is the
  // fallback when sendBeacon refuses (it returns false when its queue is full).
  const send = (n, p, i, e, sd) => {
    if (ignored || !page) return // nothing before the first pageview, e.g. while prerendering
    const body = JSON.stringify({
      n, u: page, d: domain, r: doc.referrer || null, w: screen.width, tz: timeZone, p, i, e, sd,
      h: hashMode,
    })
    navigator.sendBeacon(api, body) || fetch(api, { method: 'POST', body, keepalive: true })
  }

  // window.footfall(name, {props, interactive}): a custom event on the current page. Props and
  // the interactive flag go out as given (`p`, `i`); absent options leave the keys out.
  const track = (name, options) => send(name, options?.props, options?.interactive)

  // --- engagement: visible time and deepest scroll of the current page ---------------------
  let page // the URL of the last pageview, which every event is reported against
  let pageKey // its path (plus hash in hash mode): SPA navigations count only when it changes
  let engaged = 0 // visible ms banked and not yet reported
  let visibleSince = 0 // start of the current visible stretch; 0 while hidden
  let maxScrollY = 0 // deepest scroll position so far; turned into % of the page when sent

  // Bank the visible time, then report it: one non-interactive engagement event when the page
  // is hidden, closed, or left by SPA navigation. Also runs when the page becomes visible
  // again; nothing is banked while hidden, so it then only restarts the clock. `pagehide`
  // passes its event as `stop`: it can fire while the page still counts as visible, and the
  // clock must not run on into the visibilitychange that follows. So closing a tab sends one
  // event, not two. A visitor who returns to the tab gets a second engagement event carrying
  // only the time since.
  const leave = (stop) => {
    const now = Date.now()
    if (visibleSince) engaged += now - visibleSince
    visibleSince = stop || doc.hidden ? 0 : now
    // Scroll depth: how far down the page the bottom of the viewport got, capped at 100
    // (overscroll can push it past the end).
    const depth = ((maxScrollY + innerHeight) / doc.documentElement.scrollHeight) * 100
    if (engaged) send('engagement', undefined, false, engaged, Math.min(100, Math.round(depth)))
    engaged = 0
  }

  // --- pageviews ---------------------------------------------------------------------------
  // `spa` is truthy (1 or an event) for history changes, which count only when the path (plus
  // hash in hash mode) changes: a query-only replaceState is not a new page. The first
  // pageview always counts. A page restored from the back/forward cache is not counted again;
  // its visible time keeps counting towards engagement.
  const pageview = (spa) => {
    const key = loc.pathname + (hashMode ? loc.hash : '')
    if (spa && key == pageKey) return
    leave()
    pageKey = key
    page = hashMode ? loc.href : loc.href.split('#')[0]
    maxScrollY = 0
    send('pageview')
  }

  for (const method of ['pushState', 'replaceState']) {
    const original = history[method]
    // pageview runs after the original: arguments are evaluated first.
    history[method] = (...args) => pageview(1, original.apply(history, args))
  }
  addEventListener('popstate', pageview)
  if (hashMode) addEventListener('hashchange', pageview)
  addEventListener('scroll', () => (maxScrollY = Math.max(maxScrollY, scrollY))) // no layout read
  addEventListener('pagehide', leave)
  addEventListener('visibilitychange', () => leave()) // fired at the document; it bubbles to window

  // --- outbound links and file downloads ---------------------------------------------------
  // sendBeacon queues the request before the click navigates away, so it is not lost.
  // The URL is sent without query or fragment: those may carry tokens.
  const clicked = (event) => {
    const link = event.target.closest('a[href]')
    // No host: mailto:, tel:, javascript: and SVG links are neither downloads nor outbound.
    // button > 1: auxclick also fires for the right button; only the middle one opens links.
    if (!link?.host || event.button > 1) return
    const props = { props: { url: link.origin + link.pathname } }
    const download = /\.(pdf|docx?|xlsx?|pptx?|csv|zip|rar|gz|dmg|exe|msi|apk|mp[34])$/i
    if (opts.downloads != 'false' && download.test(link.pathname)) track('File Download', props)
    else if (opts.outbound != 'false' && link.host != loc.host) track('Outbound Link: Click', props)
  }
  addEventListener('click', clicked)
  addEventListener('auxclick', clicked) // middle-click, which opens a new tab

  // --- public API --------------------------------------------------------------------------
  // Calls made before this script ran were queued by the optional snippet
  //   window.footfall = window.footfall || function () { (footfall.q = footfall.q || []).push(arguments) }
  // and are sent right after the first pageview.
  const queued = window.footfall?.q
  window.footfall = window.trackEvent = track

  // A prerendered page is counted when, and only if, the visitor actually sees it.
  const start = () => {
    pageview()
    queued?.map((args) => track(...args))
  }
  doc.prerendering ? doc.addEventListener('prerenderingchange', start) : start()
})(document, location)
