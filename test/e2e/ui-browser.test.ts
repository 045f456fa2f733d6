/**
 * The admin UI (issue 22) in a real browser: Debian's Chromium driven by playwright-core against a gateway booted
 * here from an unchanged LiteLLM config (general_settings.master_key, a priced model on a fake upstream, and a
 * `max_parallel_requests: 1` model on a slow one for the Live page). What an operator does, end to end: sign in
 * with the master key (a wrong one is refused), create a key and see it once, use it with the official `openai`
 * client, find the call in Logs and its cost in Usage, block the key and see the next call refused, watch calls
 * queue on Live, visit every page (screenshots under test/artifacts/ui/, no console errors, a keyboard-operable
 * dialog), and sign out (the cookie is gone and the API refuses the browser).
 *
 * The subtests share one gateway and one browser and run in order (each later one uses what an earlier one made),
 * but every subtest has its own browser context, so each signs in afresh.
 */
import t, { type Test } from 'tap'
import OpenAI from 'openai'
import type { Page } from 'playwright-core'
import { startGateway } from '../helpers/gateway.js'
import { defaultChat, delay, startUpstream } from '../helpers/upstream.js'
import { launchBrowser, openContext, until, type UiContext } from '../helpers/browser.js'
import { admin, eventually, INPUT_PRICE, MASTER, OUTPUT_PRICE } from './helpers.js'

t.setTimeout(300_000)

const SESSION_COOKIE = 'sy_session'
/** Chromium logs every 401 a fetch gets as a console error; these are the expected ones (signed out, wrong key). */
const SIGNED_OUT_401 = /status of 401.*\/ui\/(session|login)\)?$/
const SLOW_MS = 600

const fast = await startUpstream(t, { chat: defaultChat({ content: 'Hello from the fake upstream.' }) })
const slow = await startUpstream(t, { chat: delay(SLOW_MS, defaultChat()) })

const yaml = `
general_settings:
  master_key: ${MASTER}
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${fast.url}
      api_key: sk-upstream
      input_cost_per_token: ${INPUT_PRICE}
      output_cost_per_token: ${OUTPUT_PRICE}
  - model_name: capped
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${slow.url}
      api_key: sk-upstream
      max_parallel_requests: 1
      input_cost_per_token: 0
      output_cost_per_token: 0
`

const gw = await startGateway(t, yaml)
const browser = await launchBrowser(t)
const UI = `${gw.url}/ui`

/** State the subtests hand on. */
const made = { key: '', alias: 'ui-e2e-key', calls: [] as Array<{ requestId: string; cost: string }> }

const client = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 })

/** The page's loading placeholders are gone (role=status "Loading…"). */
async function settled(page: Page): Promise<void> {
  await until(async () => (await page.getByRole('status').filter({ hasText: /^\s*Loading/ }).count()) === 0, 'the page to finish loading')
}

/** Open /ui in a fresh context and sign in with `key`; resolves once the section nav is shown. */
async function signIn(t: Test, key = MASTER): Promise<UiContext> {
  const ui = await openContext(t, browser)
  await ui.page.goto(UI)
  await ui.page.getByLabel('Master key or admin key').fill(key)
  await ui.page.getByRole('button', { name: 'Sign in' }).click()
  await ui.page.getByRole('navigation', { name: 'Sections' }).waitFor()
  return ui
}

/** Click a nav link and wait for its page to load. */
async function go(ui: UiContext, section: string): Promise<void> {
  await ui.page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: section, exact: true }).click()
  await ui.page.getByRole('heading', { name: section, exact: true }).first().waitFor()
  await settled(ui.page)
}

async function sessionCookie(ui: UiContext) {
  return (await ui.context.cookies(gw.url)).find((c) => c.name === SESSION_COOKIE)
}

/** The status a fetch from inside the page gets (so it carries whatever cookie the browser holds). */
function statusFromPage(page: Page, path: string): Promise<number> {
  return page.evaluate(async (p) => (await fetch(p, { credentials: 'same-origin' })).status, path)
}

t.test('sign in: a wrong master key is refused with an alert and no cookie; the right one signs in', async (t) => {
  const ui = await openContext(t, browser)
  const res = await ui.page.goto(UI)
  t.equal(res?.status(), 200, 'GET /ui')
  t.match(res?.headers()['content-security-policy'] ?? '', /default-src 'self'.*frame-ancestors 'none'/, 'served with the strict CSP')
  const field = ui.page.getByLabel('Master key or admin key')
  await field.waitFor()
  await ui.screenshot('01-sign-in')

  await field.fill('sk-not-the-master-key')
  await ui.page.getByRole('button', { name: 'Sign in' }).click()
  const alert = ui.page.getByRole('alert')
  await alert.waitFor()
  t.ok((await alert.innerText()).trim().length > 0, `the refusal is shown: ${await alert.innerText()}`)
  t.equal(await sessionCookie(ui), undefined, 'no session cookie after a wrong key')
  t.ok(ui.errorResponses.some((r) => /^401 POST .*\/ui\/login$/.test(r)), 'POST /ui/login answered 401')
  t.equal(await ui.page.getByRole('navigation', { name: 'Sections' }).count(), 0, 'still on the sign-in screen')
  await ui.screenshot('01-sign-in-refused')

  await field.fill(MASTER)
  await ui.page.getByRole('button', { name: 'Sign in' }).click()
  await ui.page.getByRole('navigation', { name: 'Sections' }).waitFor()
  const cookie = await sessionCookie(ui)
  t.ok(cookie, 'the session cookie is set')
  t.equal(cookie?.httpOnly, true, 'HttpOnly')
  t.equal(cookie?.sameSite, 'Strict', 'SameSite=Strict')
  const lifetime = (cookie?.expires ?? 0) - Date.now() / 1000
  t.ok(Math.abs(lifetime - 43_200) < 120, `lasts 12 h (Max-Age=43200): ${Math.round(lifetime)} s`)
  t.equal(await ui.page.evaluate<boolean>("document.cookie.includes('sy_session')"), false, 'not readable from script')
  t.same(ui.problems([SIGNED_OUT_401]), [], 'no console errors but the expected 401s')
})

t.test('keys: create one in the dialog, see it once, never again', async (t) => {
  const ui = await signIn(t)
  await go(ui, 'Keys')
  await ui.page.getByRole('button', { name: 'Create key' }).click()
  const dialog = ui.page.getByRole('dialog')
  await dialog.waitFor()
  await dialog.getByLabel('Key alias').fill(made.alias)
  t.equal(await dialog.getByLabel('Models (comma-separated)').count(), 1, 'a models field')
  t.equal(await dialog.getByLabel('Max budget (USD)').count(), 1, 'a budget field')
  t.equal(await dialog.getByLabel('RPM limit').count(), 1, 'an RPM field')
  t.equal(await dialog.getByLabel('TPM limit').count(), 1, 'a TPM field')
  await dialog.getByRole('button', { name: 'Create', exact: true }).click()
  const shown = ui.page.getByTestId('new-key')
  await shown.waitFor()
  made.key = (await shown.innerText()).trim()
  t.match(made.key, /^sk-\S{8,}$/, 'the new key is shown')
  t.equal(await ui.page.getByRole('button', { name: 'Copy' }).count(), 1, 'with a Copy button')
  await ui.screenshot('02-keys-new-key')

  await ui.page.keyboard.press('Escape')
  await until(async () => (await ui.page.getByTestId('new-key').count()) === 0, 'the dialog to close')
  await ui.page.getByRole('row').filter({ hasText: made.alias }).waitFor()
  t.notOk((await ui.page.content()).includes(made.key), 'the key is not in the list')

  await ui.page.reload()
  await ui.page.getByRole('row').filter({ hasText: made.alias }).waitFor()
  t.notOk((await ui.page.content()).includes(made.key), 'nor after a reload')
  await go(ui, 'Teams')
  await go(ui, 'Keys')
  await ui.page.getByRole('row').filter({ hasText: made.alias }).waitFor()
  t.notOk((await ui.page.content()).includes(made.key), 'nor after navigating away and back')
  const stored = await ui.page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })')
  t.notOk(stored.includes(made.key), 'nor kept in local or session storage')
  await ui.screenshot('02-keys')
  t.same(ui.problems([SIGNED_OUT_401]), [], 'no console errors')
})

t.test('the key works with the official openai client', async (t) => {
  t.ok(made.key, 'a key was created')
  for (const content of ['Say hello.', 'Say hello to the admin UI, in one short sentence.']) {
    const { data, response, request_id } = await client(made.key).chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] })
      .withResponse()
    t.equal(data.choices[0]?.message.content, 'Hello from the fake upstream.')
    const requestId = response.headers.get('x-request-id') ?? ''
    const cost = response.headers.get('x-litellm-response-cost') ?? ''
    t.ok(requestId, `x-request-id ${requestId}`)
    t.equal(request_id, requestId, 'the SDK read the same request id')
    t.ok(Number(cost) > 0, `x-litellm-response-cost ${cost}`)
    made.calls.push({ requestId, cost })
  }
})

t.test('logs show the call and its details; usage shows its exact cost', async (t) => {
  t.equal(made.calls.length, 2, 'two calls made')
  // The spend writer flushes in batches: wait until both rows are stored before looking.
  await eventually(async () => {
    const r = await admin(gw.url, 'GET', '/spend/logs')
    const ids = new Set(Array.isArray(r.body) ? r.body.map((x: any) => x.request_id) : [])
    return made.calls.every((c) => ids.has(c.requestId))
  }, 15_000, 'the spend rows of both calls')

  const ui = await signIn(t)
  await go(ui, 'Logs')
  const { requestId } = made.calls[1]!
  const row = ui.page.getByRole('row').filter({ hasText: requestId })
  await row.waitFor()
  await ui.screenshot('04-logs')
  await row.click()
  const details = ui.page.getByRole('region', { name: 'Call details' })
  await details.waitFor()
  await until(async () => (await details.innerText()).includes(requestId), 'the detail panel to show the request id')
  t.match(await details.innerText(), /gpt-4o-mini/, 'the detail names the model')
  t.match(await details.innerText(), new RegExp(made.alias), 'and the key')
  await ui.screenshot('04-logs-detail')

  await go(ui, 'Usage')
  const expected = made.calls.reduce((sum, c) => sum + Number(c.cost), 0).toFixed(6)
  const total = ui.page.getByTestId('usage-total-spend')
  await total.waitFor()
  const text = (await total.innerText()).trim()
  t.equal(text.replace(/[^0-9.]/g, ''), expected, `usage-total-spend "${text}" is the calls' cost, ${expected}`)
  t.ok(await ui.page.locator('svg').count() > 0, 'charts are inline SVG')
  await ui.screenshot('05-usage')
  t.same(ui.problems([SIGNED_OUT_401]), [], 'no console errors')
})

t.test('blocking the key in the UI refuses its next call', async (t) => {
  const ui = await signIn(t)
  await go(ui, 'Keys')
  const row = ui.page.getByRole('row').filter({ hasText: made.alias })
  await row.getByRole('button', { name: 'Block', exact: true }).click()
  await row.getByRole('button', { name: 'Unblock', exact: true }).waitFor()
  await ui.screenshot('06-keys-blocked')
  const err = await client(made.key).chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still there?' }] })
    .then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>)
  t.ok(err instanceof OpenAI.APIError, 'the call is refused')
  t.equal(err?.status, 401, '401')
  t.match(err?.message ?? '', /Key is blocked/, 'with the blocked-key message')
  t.same(ui.problems([SIGNED_OUT_401]), [], 'no console errors')
})

t.test('live: calls queued behind a capped group show on the Live page within seconds', async (t) => {
  const ui = await signIn(t)
  await go(ui, 'Live')
  const started = Date.now()
  const calls = Array.from({ length: 10 }, (_, i) => client(MASTER).chat.completions
    .create({ model: 'capped', messages: [{ role: 'user', content: `queued ${i}` }], priority: i % 3 } as any)
    .then(() => 'ok', (e: any) => e?.status ?? String(e)))
  const card = ui.page.getByTestId('queue-capped')
  // One snapshot of the card: its queued count, and its in-flight count against the group's capacity of 1.
  const text = await until(async () => {
    if (!(await card.count())) return null
    const shown = await card.innerText()
    const m = /Queued:?\s*(\d+)/i.exec(shown)
    return m && Number(m[1]) > 0 ? shown : null
  }, 'queue-capped to show calls queued', 5_000)
  t.pass(`queue-capped shows calls queued after ${Date.now() - started} ms: ${text.replace(/\s+/g, ' ')}`)
  const inFlight = /In flight:?\s*(\d+)\s*of\s*(\d+)/i.exec(text)
  t.ok(inFlight && Number(inFlight[1]) <= 1 && inFlight[2] === '1', 'never more in flight than the capacity of 1')
  const tiles = await until(async () => {
    const f = Number((await ui.page.getByTestId('live-in-flight').innerText()).replace(/\D+/g, ''))
    const q = Number((await ui.page.getByTestId('live-queued').innerText()).replace(/\D+/g, ''))
    return q > 0 ? { f, q } : null
  }, 'the totals to show calls queued', 5_000)
  t.ok(tiles.f <= 1, `the in-flight total counts only calls past the queue (${tiles.f} in flight, ${tiles.q} queued)`)
  await ui.screenshot('07-live')
  t.same(await Promise.all(calls), Array(10).fill('ok'), 'every queued call is served in the end')
  t.same(ui.problems([SIGNED_OUT_401]), [], 'no console errors')
})

t.test('every page loads cleanly (screenshots), and the create-key dialog works from the keyboard', async (t) => {
  const ui = await signIn(t)
  const sections = ['Keys', 'Teams', 'Users', 'End users', 'Budgets', 'Models', 'Usage', 'Logs', 'MCP', 'Live']
  for (const [i, section] of sections.entries()) {
    ui.clearProblems()
    await go(ui, section)
    t.equal(await ui.page.getByRole('alert').count(), 0, `${section}: no error shown`)
    await ui.screenshot(`10-${String(i).padStart(2, '0')}-${section.toLowerCase().replace(/\s+/g, '-')}`)
    t.same(ui.problems(), [], `${section}: no console errors or failed requests`)
  }
  // Every table header cell is a column header.
  await go(ui, 'Keys')
  t.equal(await ui.page.locator('th:not([scope])').count(), 0, 'every <th> has a scope')

  // Tab to "Create key", open with Enter, focus moves into the dialog, Escape closes it.
  await ui.page.locator('body').click({ position: { x: 1, y: 1 } })
  let reached = false
  for (let i = 0; i < 40 && !reached; i++) {
    await ui.page.keyboard.press('Tab')
    reached = await ui.page.evaluate<boolean>("document.activeElement?.textContent?.trim() === 'Create key'")
  }
  t.ok(reached, 'the Create key button is reachable with Tab')
  await ui.page.keyboard.press('Enter')
  const dialog = ui.page.getByRole('dialog')
  await dialog.waitFor()
  t.ok(await ui.page.evaluate<boolean>("!!document.activeElement?.closest('dialog')"), 'focus is inside the dialog')
  await ui.screenshot('10-keys-create-dialog')
  await ui.page.keyboard.press('Escape')
  await dialog.waitFor({ state: 'hidden' })
  t.pass('Escape closes the dialog')
  t.same(ui.problems(), [], 'no console errors')
})

t.test('sign out: the cookie is gone and the API refuses the browser', async (t) => {
  const ui = await signIn(t)
  t.equal(await statusFromPage(ui.page, '/key/list'), 200, 'signed in, the management API answers the browser')
  await ui.page.getByRole('button', { name: 'Sign out' }).click()
  await ui.page.getByLabel('Master key or admin key').waitFor()
  t.equal(await sessionCookie(ui), undefined, 'the session cookie is gone')
  t.equal(await statusFromPage(ui.page, '/key/list'), 401, '/key/list now answers 401')
  t.equal(await statusFromPage(ui.page, '/ui/session'), 401, '/ui/session answers 401')
  await ui.page.reload()
  await ui.page.getByLabel('Master key or admin key').waitFor()
  t.pass('a reload shows the sign-in screen')
  t.same(ui.problems([SIGNED_OUT_401, /status of 401.*\/key\/list/]), [], 'no console errors but the expected 401s')
})
