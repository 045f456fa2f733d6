/**
 * Internal users, as LiteLLM's /user/* routes: new (with a key, unless auto_create_key is false), info, update,
 * delete, list. A user's teams are kept in step with the teams' members (see teams.ts); deleting a user deletes
 * their keys and takes them out of their teams.
 */
import type { KeyRecord, Store, TeamRecord, UserRecord } from '../../core/store.js'
import { checkOwn } from './access.js'
import { bodySchema, BUDGET_PROPS, MAX_IDS, queryInt, queryString, S } from './input.js'
import { createKey } from './keys.js'
import { addMembers } from './teams.js'
import {
  allRows, budgetFields, budgetPatch, conflict, copyPresent, extras, invalid, invalidate, iso, newId, notFound, spendSet,
  type Api, type Deps,
} from './shared.js'

const USER_PROPS = {
  ...BUDGET_PROPS,
  user_id: S.idOrNull,
  user_alias: S.text,
  user_email: S.text,
  user_role: S.role,
  teams: { type: ['array', 'null'], items: { anyOf: [{ type: 'string' }, { type: 'object', required: ['team_id'], properties: { team_id: S.id } }] }, maxItems: MAX_IDS },
  models: S.strings,
  auto_create_key: { type: 'boolean' },
  team_id: S.idOrNull,
  key_alias: S.text,
  duration: { type: ['string', 'null'], format: 'key-duration' },
  model_max_budget: S.modelMaxBudget,
  aliases: S.object,
  config: S.object,
  permissions: S.object,
  send_invite_email: S.bool,
  password: S.text,
} as const

/** Request fields that configure the auto-created key, or are request-only; never stored on the user. */
const KEY_ONLY = ['auto_create_key', 'team_id', 'key_alias', 'duration', 'aliases', 'config', 'permissions', 'send_invite_email', 'password'] as const
const HANDLED = new Set([...Object.keys(USER_PROPS), 'created_at', 'updated_at', 'budget_reset_at', 'organizations'])
const PLAIN = ['user_alias', 'user_email', 'user_role', 'models', 'model_max_budget'] as const

const checkNew = bodySchema(USER_PROPS)
const checkUpdate = bodySchema(USER_PROPS)
const checkDelete = bodySchema({ user_ids: S.ids }, ['user_ids'])

/** LiteLLM's UserInfo keys carry their team's alias ("None" for a key without a team). */
function keysWithTeamAlias(keys: readonly KeyRecord[], teams: readonly TeamRecord[]): Array<Record<string, unknown>> {
  return keys.map((k) => ({ ...k, team_alias: k.team_id ? (teams.find((t) => t.team_id === k.team_id)?.team_alias ?? null) : 'None' }))
}

async function checkEmailFree(store: Store, email: unknown, self: string | null): Promise<void> {
  if (typeof email !== 'string' || email === '') return
  const { rows } = await store.list('user', { where: { user_email: email }, limit: 2 })
  if (rows.some((u) => u.user_id !== self)) throw conflict(`User with email ${email} already exists`, 'user_email')
}

/** Remove a user from every team that lists them. */
async function leaveTeams(deps: Deps, store: Store, user: UserRecord): Promise<void> {
  for (const teamId of user.teams) {
    const team = await store.get('team', teamId)
    if (!team) continue
    const members = team.members_with_roles.filter((m) => m.user_id !== user.user_id)
    if (members.length === team.members_with_roles.length) continue
    await store.update('team', teamId, { members_with_roles: members, updated_at: iso(deps.now()) })
    invalidate(deps, 'team', teamId)
  }
}

export function userApis(deps: Deps): Api[] {
  return [
    {
      method: 'POST', path: '/user/new', access: 'admin', name: 'newUser',
      async run(call) {
        const body = checkNew(await call.body())
        const store = call.store
        const userId = (body.user_id as string | null | undefined) ?? newId()
        if (await store.get('user', userId)) throw conflict(`User with id ${userId} already exists`, 'user_id')
        await checkEmailFree(store, body.user_email, null)
        const autoKey = body.auto_create_key !== false
        // Checked before the user is written, so a refused key leaves no user behind.
        if (autoKey && typeof body.key_alias === 'string' && (await store.list('key', { where: { key_alias: body.key_alias }, limit: 1 })).total > 0) {
          throw conflict(`Key with alias '${body.key_alias}' already exists. Unique key aliases across all keys are required.`, 'key_alias')
        }
        const record: Record<string, unknown> = {
          ...extras(body, HANDLED),
          ...budgetFields(body, deps.now()),
          user_id: userId,
          user_alias: null,
          user_email: null,
          user_role: 'internal_user',
          teams: [],
          models: [],
        }
        copyPresent(record, body, PLAIN)
        record.user_role ??= 'internal_user'
        record.models ??= []
        await store.insert('user', record as unknown as UserRecord)
        invalidate(deps, 'user', userId)
        // Teams that do not exist are skipped, as LiteLLM's /user/new does.
        const wanted = [...((body.teams as Array<string | { team_id: string; user_role?: 'admin' | 'user' }> | null | undefined) ?? [])]
        if (typeof body.team_id === 'string') wanted.push(body.team_id)
        for (const t of wanted) {
          const teamId = typeof t === 'string' ? t : t.team_id
          const team = await store.get('team', teamId)
          if (team) await addMembers(deps, store, team, [{ role: typeof t === 'string' ? 'user' : (t.user_role ?? 'user'), user_id: userId, user_email: (body.user_email as string | null | undefined) ?? null }])
        }
        const user = (await store.get('user', userId))!
        if (!autoKey) return { ...user, key: '', expires: null, key_name: null }
        const keyBody: Record<string, unknown> = { user_id: userId, models: body.models ?? [], metadata: body.metadata ?? {} }
        copyPresent(keyBody, body, ['team_id', 'key_alias', 'duration', 'aliases', 'config', 'permissions', 'tpm_limit', 'rpm_limit', 'max_parallel_requests'])
        const { key, record: k } = await createKey(deps, store, call.principal, keyBody)
        const { token: _token, ...keyFields } = k
        return { ...keyFields, ...user, key, key_name: k.key_name, expires: k.expires, key_alias: k.key_alias, team_id: k.team_id }
      },
    },
    {
      method: 'GET', path: '/user/info', access: 'self', name: 'userInfo',
      async run(call) {
        const p = call.principal
        const store = call.store
        const given = queryString(call.ctx, 'user_id')
        if (given === undefined && p?.userId === undefined) {
          checkOwn(p, false, '/user/info')
          // An admin without a user asks about everything, as LiteLLM answers its proxy admin.
          const teams = await allRows(store, 'team')
          return { user_id: null, user_info: null, keys: keysWithTeamAlias(await allRows(store, 'key'), teams), teams }
        }
        const userId = given ?? p!.userId!
        checkOwn(p, userId === p?.userId, '/user/info')
        const user = await store.get('user', userId)
        if (!user) throw notFound(`User ${userId} not found`, 'user_id')
        const teams: TeamRecord[] = []
        for (const t of user.teams) {
          const team = await store.get('team', t)
          if (team) teams.push(team)
        }
        return { user_id: userId, user_info: user, keys: keysWithTeamAlias(await allRows(store, 'key', { user_id: userId }), teams), teams }
      },
    },
    {
      method: 'POST', path: '/user/update', access: 'admin', name: 'updateUser',
      async run(call) {
        const body = checkUpdate(await call.body())
        const store = call.store
        let user: UserRecord | null = null
        if (typeof body.user_id === 'string') user = await store.get('user', body.user_id)
        else if (typeof body.user_email === 'string') user = (await store.list('user', { where: { user_email: body.user_email }, limit: 1 })).rows[0] ?? null
        else throw invalid('Either user id or user email must be provided', 'user_id')
        if (!user) throw notFound(`User not found, passed ${body.user_id ? `user_id=${String(body.user_id)}` : `user_email=${String(body.user_email)}`}`, body.user_id ? 'user_id' : 'user_email')
        const now = deps.now()
        // `teams` is changed through /team/member_add and /team/member_delete, which keep both sides in step.
        const patch: Record<string, unknown> = extras(body, new Set([...HANDLED, ...KEY_ONLY]))
        copyPresent(patch, body, PLAIN)
        if (body.user_id === undefined) delete patch.user_email
        else if (body.user_email !== undefined) await checkEmailFree(store, body.user_email, user.user_id)
        if (body.models === null) patch.models = []
        if (body.user_role === null) delete patch.user_role
        const spendOrPeriod = budgetPatch(patch, body, now)
        patch.updated_at = iso(now)
        const updated = await store.update('user', user.user_id, patch)
        if (!updated) throw notFound(`User not found, passed user_id=${user.user_id}`, 'user_id')
        invalidate(deps, 'user', user.user_id)
        if (spendOrPeriod) spendSet(deps, 'user', updated, user.user_id)
        return { user_id: user.user_id, data: updated }
      },
    },
    {
      method: 'POST', path: '/user/delete', access: 'admin', name: 'deleteUsers',
      async run(call) {
        const body = checkDelete(await call.body())
        const ids = body.user_ids as string[]
        const users: UserRecord[] = []
        for (const id of ids) {
          const u = await call.store.get('user', id)
          if (!u) throw notFound(`User not found, passed user_id=${id}`, 'user_ids')
          users.push(u)
        }
        for (const u of users) {
          await leaveTeams(deps, call.store, u)
          for (const k of await allRows(call.store, 'key', { user_id: u.user_id })) {
            await call.store.delete('key', k.token)
            invalidate(deps, 'key', k.token)
          }
          await call.store.delete('user', u.user_id)
          invalidate(deps, 'user', u.user_id)
        }
        // LiteLLM answers with the number of users deleted (prisma's delete_many count).
        return users.length
      },
    },
    {
      method: 'GET', path: '/user/list', access: 'read', name: 'listUsers',
      async run(call) {
        const ctx = call.ctx
        const store = call.store
        const page = queryInt(ctx, 'page', 1, 1_000_000, 1)
        const pageSize = queryInt(ctx, 'page_size', 1, 100, 25)
        const role = queryString(ctx, 'role')
        const ids = queryString(ctx, 'user_ids')?.split(',').map((s) => s.trim()).filter(Boolean)
        const email = queryString(ctx, 'user_email')?.toLowerCase()
        const team = queryString(ctx, 'team')
        const where = role !== undefined ? { user_role: role } : undefined
        let users: UserRecord[]
        let total: number
        if (ids === undefined && email === undefined && team === undefined) {
          ;({ rows: users, total } = await store.list('user', { where, offset: (page - 1) * pageSize, limit: pageSize }))
        } else {
          // Partial and list filters are not store filters: scan and filter here (LiteLLM: contains / in / has).
          const all = (await allRows(store, 'user', where)).filter((u) =>
            (ids === undefined || (ids.length === 1 ? u.user_id.toLowerCase().includes(ids[0]!.toLowerCase()) : ids.includes(u.user_id))) &&
            (email === undefined || (u.user_email ?? '').toLowerCase().includes(email)) &&
            (team === undefined || u.teams.includes(team)))
          total = all.length
          users = all.slice((page - 1) * pageSize, page * pageSize)
        }
        const out = []
        for (const u of users) out.push({ ...u, key_count: (await store.list('key', { where: { user_id: u.user_id }, limit: 1 })).total })
        return { users: out, total, page, page_size: pageSize, total_pages: Math.ceil(total / pageSize) }
      },
    },
  ]
}
