/**
 * Virtual keys, as LiteLLM's /key/* routes: generate, update, delete, info, list, regenerate, block, unblock.
 *
 * A key is `sk-` + 32 random bytes (base64url, from the CSPRNG). Only its SHA-256 hex (`token`) is stored; the
 * clear key is in the /key/generate and /key/regenerate responses and nowhere else (not in the store, not in
 * logs, not in error messages). Wherever a key is input it may be the clear key or its hash, as in LiteLLM.
 */
import { randomBytes } from 'node:crypto'
import { modelAllowed } from '../../core/access.js'
import type { KeyRecord, Store, TeamRecord } from '../../core/store.js'
import type { Principal } from '../../core/state.js'
import { checkOwn } from './access.js'
import { bodySchema, BUDGET_PROPS, MAX_IDS, queryBool, queryInt, queryString, S } from './input.js'
import {
  actor, budgetFields, budgetPatch, conflict, copyPresent, expiresAt, extras, hashKey, invalid, invalidate, iso, keyName,
  modelBudgets, notFound, shownKey, spendSet, tokenOf, type Api, type Call, type Deps,
} from './shared.js'

/** Random bytes in a generated key: 32 (256 bits), more than LiteLLM's 16. */
const KEY_BYTES = 32

const KEY_PROPS = {
  ...BUDGET_PROPS,
  key: { type: ['string', 'null'], minLength: 4 },
  key_alias: S.text,
  duration: { type: ['string', 'null'], format: 'key-duration' },
  expires: S.timestamp,
  models: S.strings,
  team_id: S.idOrNull,
  user_id: S.idOrNull,
  model_max_budget: S.modelMaxBudget,
  allowed_routes: S.strings,
  blocked: S.bool,
  tags: S.strings,
  guardrails: S.strings,
  aliases: S.object,
  config: S.object,
  permissions: S.object,
  allowed_cache_controls: S.strings,
  model_rpm_limit: S.object,
  model_tpm_limit: S.object,
} as const

/** Fields handled explicitly; the rest of a body is kept as given. Request-only fields are never stored. */
const HANDLED = new Set([
  ...Object.keys(KEY_PROPS), 'token', 'key_name', 'model_spend', 'created_at', 'updated_at', 'created_by', 'updated_by',
  'budget_reset_at', 'new_key', 'new_master_key', 'grace_period', 'send_invite_email', 'key_type', 'keys', 'key_aliases',
])
/** Plain copies from body to record, on create and update. */
const PLAIN = ['key_alias', 'user_id', 'models', 'allowed_routes', 'blocked', 'aliases', 'config', 'permissions', 'allowed_cache_controls',
  'model_rpm_limit', 'model_tpm_limit', 'tags', 'guardrails'] as const

const checkGenerate = bodySchema(KEY_PROPS)
const checkUpdate = bodySchema({ ...KEY_PROPS, key: { type: 'string', minLength: 4 } }, ['key'])
const checkRegenerate = bodySchema({ ...KEY_PROPS, new_key: { type: ['string', 'null'] } })
const idList = { type: ['array', 'null'], items: { type: 'string' }, maxItems: MAX_IDS } as const
const checkDelete = bodySchema({ keys: idList, key_aliases: idList })
const checkBlock = bodySchema({ key: { type: 'string', minLength: 4 } }, ['key'])

function isoOrNull(v: unknown): string | null {
  return typeof v === 'string' ? new Date(v).toISOString() : null
}

function generateKey(): string {
  return `sk-${randomBytes(KEY_BYTES).toString('base64url')}`
}

function checkClearKey(key: unknown, param: string): string {
  if (typeof key !== 'string' || !key.startsWith('sk-')) {
    throw invalid(`Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: ${typeof key === 'string' ? `${key.slice(0, 2)}****` : typeof key}`, param)
  }
  return key
}

/** LiteLLM keeps tags and guardrails in the key's metadata too; scripts read them there. */
function withMetadataLists(metadata: unknown, body: Record<string, unknown>): Record<string, unknown> {
  const m = { ...((metadata as Record<string, unknown> | null) ?? {}) }
  if (Array.isArray(body.tags)) m.tags = body.tags
  if (Array.isArray(body.guardrails)) m.guardrails = body.guardrails
  return m
}

async function teamOf(store: Store, teamId: string): Promise<TeamRecord> {
  const team = await store.get('team', teamId)
  if (!team) throw invalid(`Team not found, passed team_id=${teamId}. Create it with /team/new first.`, 'team_id')
  return team
}

/** A key's models must be within its team's, when the team has a list. */
function checkTeamModels(team: TeamRecord, models: readonly string[]): void {
  if (!team.models?.length) return
  for (const m of models) {
    if (m === 'all-team-models') continue
    if (!modelAllowed(team.models, m)) {
      throw invalid(`Model '${m}' is not in the team's models. Team ${team.team_id} allows models=${JSON.stringify(team.models)}.`, 'models')
    }
  }
}

async function checkAliasFree(store: Store, alias: unknown, self: string | null): Promise<void> {
  if (typeof alias !== 'string') return
  const { rows } = await store.list('key', { where: { key_alias: alias }, limit: 2 })
  if (rows.some((r) => r.token !== self)) {
    throw conflict(`Key with alias '${alias}' already exists. Unique key aliases across all keys are required.`, 'key_alias')
  }
}

async function checkBudgetId(store: Store, id: unknown): Promise<void> {
  if (typeof id === 'string' && !(await store.get('budget', id))) throw invalid(`Budget not found, passed budget_id=${id}. Create it with /budget/new.`, 'budget_id')
}

export interface NewKey {
  key: string
  record: KeyRecord
}

/** Create a key from a (checked) generate request; shared with /user/new's auto-created key. */
export async function createKey(deps: Deps, store: Store, principal: Principal | null, body: Record<string, unknown>): Promise<NewKey> {
  const now = deps.now()
  const key = body.key === undefined || body.key === null ? generateKey() : checkClearKey(body.key, 'key')
  const token = hashKey(key)
  const models = (body.models as string[] | null | undefined) ?? []
  if (typeof body.team_id === 'string') checkTeamModels(await teamOf(store, body.team_id), models)
  await checkBudgetId(store, body.budget_id)
  await checkAliasFree(store, body.key_alias, null)
  const record: Record<string, unknown> = {
    ...extras(body, HANDLED),
    ...budgetFields(body, now),
    token,
    key_name: keyName(key),
    key_alias: null,
    user_id: null,
    team_id: body.team_id ?? null,
    blocked: null,
    allowed_routes: [],
    aliases: {},
    config: {},
    permissions: {},
    created_by: actor(principal),
    updated_by: actor(principal),
  }
  copyPresent(record, body, PLAIN)
  record.models = models
  record.allowed_routes ??= []
  record.expires = body.duration !== undefined ? expiresAt(body.duration, now) : isoOrNull(body.expires)
  record.model_max_budget = modelBudgets(body.model_max_budget)
  record.model_spend = {}
  record.metadata = withMetadataLists(body.metadata, body)
  const rec = record as KeyRecord
  await store.insert('key', rec)
  invalidate(deps, 'key', token)
  return { key, record: rec }
}

/** The patch an update (or regenerate) request makes to a key; checks team, alias and budget references. */
async function keyPatch(deps: Deps, store: Store, principal: Principal | null, rec: KeyRecord, body: Record<string, unknown>) {
  const now = deps.now()
  const patch: Record<string, unknown> = extras(body, HANDLED)
  copyPresent(patch, body, PLAIN)
  const spendOrPeriod = budgetPatch(patch, body, now)
  if (body.team_id !== undefined) patch.team_id = body.team_id
  const teamId = body.team_id !== undefined ? (body.team_id as string | null) : rec.team_id
  if (teamId && (body.team_id !== undefined || body.models !== undefined)) {
    checkTeamModels(await teamOf(store, teamId), (body.models as string[] | null | undefined) ?? rec.models ?? [])
  }
  if (body.models === null) patch.models = []
  if (body.allowed_routes === null) patch.allowed_routes = []
  if (body.key_alias !== undefined) await checkAliasFree(store, body.key_alias, rec.token)
  if (body.budget_id !== undefined) await checkBudgetId(store, body.budget_id)
  if (body.duration !== undefined) patch.expires = expiresAt(body.duration, now)
  else if (body.expires !== undefined) patch.expires = isoOrNull(body.expires)
  if (body.model_max_budget !== undefined) patch.model_max_budget = modelBudgets(body.model_max_budget)
  if (body.metadata !== undefined || body.tags !== undefined || body.guardrails !== undefined) {
    patch.metadata = withMetadataLists(body.metadata !== undefined ? body.metadata : rec.metadata, body)
  }
  patch.updated_at = iso(now)
  patch.updated_by = actor(principal)
  return { patch, spendOrPeriod }
}

async function findKey(store: Store, input: string, param = 'key'): Promise<KeyRecord> {
  const rec = await store.get('key', tokenOf(input))
  if (!rec) throw notFound(`Key not found: ${shownKey(input)}`, param)
  return rec
}

async function setBlocked(deps: Deps, call: Call, blocked: boolean): Promise<KeyRecord> {
  const body = checkBlock(await call.body())
  const rec = await findKey(call.store, body.key as string)
  const updated = await call.store.update('key', rec.token, { blocked, updated_at: iso(deps.now()), updated_by: actor(call.principal) })
  if (!updated) throw notFound(`Key not found: ${shownKey(body.key as string)}`, 'key')
  invalidate(deps, 'key', rec.token)
  return updated
}

/** The key a token's row describes, without its hash (LiteLLM's /key/info drops `token`). */
function withoutToken(rec: KeyRecord): Record<string, unknown> {
  const { token: _token, ...info } = rec
  return info
}

export function keyApis(deps: Deps): Api[] {
  return [
    {
      method: 'POST', path: '/key/generate', access: 'admin', name: 'generateKey',
      async run(call) {
        const body = checkGenerate(await call.body())
        const { key, record } = await createKey(deps, call.store, call.principal, body)
        return { ...record, key, token: record.token, token_id: record.token, duration: body.duration ?? null, litellm_budget_table: null }
      },
    },
    {
      method: 'POST', path: '/key/update', access: 'admin', name: 'updateKey',
      async run(call) {
        const body = checkUpdate(await call.body())
        const rec = await findKey(call.store, body.key as string)
        const { patch, spendOrPeriod } = await keyPatch(deps, call.store, call.principal, rec, body)
        const updated = await call.store.update('key', rec.token, patch)
        if (!updated) throw notFound(`Key not found: ${shownKey(body.key as string)}`, 'key')
        invalidate(deps, 'key', rec.token)
        if (spendOrPeriod) spendSet(deps, 'key', updated, rec.token)
        return { ...updated, key: rec.token }
      },
    },
    {
      method: 'POST', path: '/key/delete', access: 'admin', name: 'deleteKeys',
      async run(call) {
        const body = checkDelete(await call.body())
        const keys = (body.keys as string[] | null | undefined) ?? []
        const aliases = (body.key_aliases as string[] | null | undefined) ?? []
        if (keys.length === 0 && aliases.length === 0) throw invalid("At least one of 'keys' or 'key_aliases' must be provided.", 'keys')
        const tokens: string[] = []
        if (keys.length) {
          for (const k of keys) if (await call.store.get('key', tokenOf(k))) tokens.push(tokenOf(k))
        } else {
          for (const a of aliases) for (const r of (await call.store.list('key', { where: { key_alias: a } })).rows) tokens.push(r.token)
        }
        if (tokens.length === 0) throw notFound('No keys found', keys.length ? 'keys' : 'key_aliases')
        for (const t of tokens) {
          await call.store.delete('key', t)
          invalidate(deps, 'key', t)
        }
        return { deleted_keys: keys.length ? keys : aliases }
      },
    },
    {
      method: 'GET', path: '/key/info', access: 'self', name: 'keyInfo',
      async run(call) {
        const p = call.principal
        const given = queryString(call.ctx, 'key')
        const token = given !== undefined ? tokenOf(given) : p?.token
        if (!token) throw notFound('Key not found in database. Pass the key to look up as ?key=.', 'key')
        const rec = await call.store.get('key', token)
        // A key may read itself and the other keys of its own user; a miss looks the same as a refusal to others.
        checkOwn(p, token === p?.token || (!!rec?.user_id && rec.user_id === p?.userId), '/key/info')
        if (!rec) throw notFound('Key not found in database', 'key')
        return { key: token, info: withoutToken(rec) }
      },
    },
    {
      method: 'GET', path: '/key/list', access: 'read', name: 'listKeys',
      async run(call) {
        const ctx = call.ctx
        const page = queryInt(ctx, 'page', 1, 1_000_000, 1)
        const size = queryInt(ctx, 'size', 1, 100, 10)
        const full = queryBool(ctx, 'return_full_object', false)
        const hash = queryString(ctx, 'key_hash')
        const where: Record<string, string> = {}
        for (const f of ['user_id', 'team_id', 'key_alias'] as const) {
          const v = queryString(ctx, f)
          if (v !== undefined) where[f] = v
        }
        let rows: KeyRecord[]
        let total: number
        if (hash !== undefined) {
          const rec = await call.store.get('key', tokenOf(hash))
          rows = rec && Object.entries(where).every(([f, v]) => rec[f] === v) ? [rec] : []
          total = rows.length
          if (page > 1) rows = []
        } else {
          ;({ rows, total } = await call.store.list('key', { where, offset: (page - 1) * size, limit: size }))
        }
        return { keys: full ? rows : rows.map((r) => r.token), total_count: total, current_page: page, total_pages: Math.ceil(total / size) }
      },
    },
    {
      method: 'POST', path: ['/key/regenerate', '/key/:key/regenerate'], access: 'admin', name: 'regenerateKey',
      async run(call) {
        const ctx = call.ctx
        const body = checkRegenerate(await call.optionalBody())
        const fromPath = (ctx as unknown as { params?: { key?: string } }).params?.key
        if (fromPath !== undefined) {
          // The access log writes the path when the response ends: show the old key as LiteLLM's key_name does.
          ctx.path = `/key/${shownKey(fromPath)}/regenerate`
        }
        const input = typeof body.key === 'string' ? body.key : fromPath
        if (!input) throw invalid('No key passed in.', 'key')
        const rec = await findKey(call.store, input)
        const key = body.new_key === undefined || body.new_key === null ? generateKey() : checkClearKey(body.new_key, 'new_key')
        const token = hashKey(key)
        const { patch, spendOrPeriod } = await keyPatch(deps, call.store, call.principal, rec, { ...body, key: undefined, new_key: undefined })
        const next = { ...rec, ...patch, token, key_name: keyName(key) } as KeyRecord
        // The token is the row's id: a new row replaces the old one (same settings and spend). The old row goes
        // first so its alias is free; if the new row cannot be written, the old one is put back.
        await call.store.delete('key', rec.token)
        try {
          await call.store.insert('key', next)
        } catch (err) {
          await call.store.insert('key', rec)
          throw err
        }
        invalidate(deps, 'key', rec.token)
        invalidate(deps, 'key', token)
        if (spendOrPeriod) spendSet(deps, 'key', next, token)
        return { ...next, key, token, token_id: token, litellm_budget_table: null }
      },
    },
    {
      method: 'POST', path: '/key/block', access: 'admin', name: 'blockKey',
      run: (call) => setBlocked(deps, call, true),
    },
    {
      method: 'POST', path: '/key/unblock', access: 'admin', name: 'unblockKey',
      run: (call) => setBlocked(deps, call, false),
    },
  ]
}
