/**
 * A real browser for the admin UI tests: playwright-core driving Debian's Chromium (/usr/bin/chromium; no browser
 * download), headless and sandbox-less as CI containers need. One browser per test file (launching is the slow
 * part), a fresh context per test (no cookie or storage carried from one test to the next), both closed on teardown.
 *
 * Every page opened through the harness records what a user would not see but a test must: console errors, uncaught
 * exceptions, requests that failed at the network level and responses with an error status, so a test can assert
 * that a screen loaded cleanly. The context only reaches 127.0.0.1: any other request is aborted (and recorded), so
 * a page that tries to load a font or script from a CDN fails the test instead of silently reaching the internet.
 *
 *   const browser = await launchBrowser(t)
 *   const ui = await openContext(t, browser)
 *   await ui.page.goto(`${gw.url}/ui`)
 *   await ui.screenshot('sign-in')
 *   t.same(ui.problems(), [])
 */
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
/** Where screenshots go (test/artifacts/ is git-ignored). */
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts', 'ui')

/** Launch Chromium once; closed when `t` ends. */
export async function launchBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-background-networking'],
    timeout: 30_000,
  })
  t.teardown(() => browser.close())
  return browser
}

/** What went wrong in a page, as the harness saw it. */
export interface PageProblems {
  /** console.error() calls and Chromium's own error log lines ("Failed to load resource: ... 401"). */
  consoleErrors: string[]
  /** Uncaught exceptions and unhandled rejections. */
  pageErrors: string[]
  /** Requests that got no response (aborted, refused, blocked as off-host). */
  failedRequests: string[]
  /** Responses with status >= 400, as "STATUS METHOD URL". */
  errorResponses: string[]
}

export interface UiContext extends PageProblems {
  context: BrowserContext
  page: Page
  /** Full-page PNG at test/artifacts/ui/<name>.png; returns the path. */
  screenshot(name: string): Promise<string>
  /**
   * Console errors, page errors and failed requests, minus what `allow` matches (an expected 401 the page shows as a
   * sign-in screen, say). Error responses are not included (a refused call is often the point of a test); read
   * `errorResponses` for those.
   */
  problems(allow?: readonly RegExp[]): string[]
  /** Forget what was recorded so far (before the step a test wants to check on its own). */
  clearProblems(): void
}

/** Only loopback origins; data: and blob: URLs never reach the router. */
function isLocal(url: string): boolean {
  try {
    const u = new URL(url)
    return u.hostname === '127.0.0.1' || u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:'
  } catch {
    return false
  }
}

/** A fresh context (1366x768, the size the UI must be readable at) with one page; closed when `t` ends. */
export async function openContext(t: Test, browser: Browser): Promise<UiContext> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, serviceWorkers: 'block' })
  t.teardown(() => context.close().catch(() => {}))
  context.setDefaultTimeout(10_000)
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], failedRequests: [], errorResponses: [] }
  await context.route('**/*', (route) => {
    const url = route.request().url()
    if (isLocal(url)) return route.continue()
    problems.failedRequests.push(`off-host request blocked: ${url}`)
    return route.abort('blockedbyclient')
  })
  const page = await context.newPage()
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() !== 'error') return
    const where = msg.location()?.url
    problems.consoleErrors.push(where ? `${msg.text()} (${where})` : msg.text())
  })
  page.on('pageerror', (err) => problems.pageErrors.push(String(err?.stack ?? err)))
  page.on('requestfailed', (req) => {
    const reason = req.failure()?.errorText ?? 'failed'
    // An off-host request is already recorded; navigating away cancels in-flight polls (ERR_ABORTED), which is fine.
    if (!isLocal(req.url()) || reason === 'net::ERR_ABORTED') return
    problems.failedRequests.push(`${req.method()} ${req.url()}: ${reason}`)
  })
  page.on('response', (res) => {
    if (res.status() >= 400) problems.errorResponses.push(`${res.status()} ${res.request().method()} ${res.url()}`)
  })
  mkdirSync(ARTIFACTS, { recursive: true })
  return {
    context,
    page,
    get consoleErrors() { return problems.consoleErrors },
    get pageErrors() { return problems.pageErrors },
    get failedRequests() { return problems.failedRequests },
    get errorResponses() { return problems.errorResponses },
    async screenshot(name) {
      const path = join(ARTIFACTS, `${name.replace(/[^a-z0-9._-]+/gi, '-')}.png`)
      await page.screenshot({ path, fullPage: true })
      return path
    },
    problems(allow = []) {
      const all = [...problems.consoleErrors, ...problems.pageErrors, ...problems.failedRequests]
      return all.filter((p) => !allow.some((re) => re.test(p)))
    },
    clearProblems() {
      for (const list of Object.values(problems) as string[][]) list.length = 0
    },
  }
}

/** Poll `check` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function until<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
