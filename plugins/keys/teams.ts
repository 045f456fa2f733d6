/**
 * Teams, as LiteLLM's /team/* routes: new, update, delete, info, list, member_add, member_delete, block, unblock.
 *
 * Membership lives in two places, as in LiteLLM: the team's `members_with_roles` and each user's `teams`. Adding a
 * member creates the user when missing (by user_id, else by user_email) and adds the team to the user's list;
 * removing one (or deleting the team) takes it out of both. Deleting a team deletes its keys.
 */
import type { Store, TeamMember, TeamRecord, UserRecord } from '../../core/store.js'
import type { Principal } from '../../core/state.js'
import { bodySchema, BUDGET_PROPS, MAX_IDS, queryRequired, queryString, S } from './input.js'
import {
  allRows, budgetFields, budgetPatch, conflict, copyPresent, extras, invalid, invalidate, iso, newId, notFound, spendSet,
  type Api, type Call, type Deps,
} from './shared.js'

const MEMBER = {
  type: 'object',
  required: ['role'],
  properties: { role: { enum: ['admin', 'user'] }, user_id: S.idOrNull, user_email: S.text },
} as const

const TEAM_PROPS = {
  ...BUDGET_PROPS,
  team_id: S.idOrNull,
  team_alias: S.text,
  models: S.strings,
  blocked: S.bool,
  organization_id: S.idOrNull,
  members_with_roles: { type: ['array', 'null'], items: MEMBER, maxItems: MAX_IDS },
  tags: S.strings,
  guardrails: S.strings,
  model_aliases: S.object,
} as const

const HANDLED = new Set([...Object.keys(TEAM_PROPS), 'admins', 'members', 'created_at', 'updated_at', 'budget_reset_at', 'spend'])
const PLAIN = ['team_alias', 'models', 'blocked', 'organization_id', 'tags', 'guardrails', 'model_aliases'] as const

const checkNew = bodySchema(TEAM_PROPS)
const checkUpdate = bodySchema({ ...TEAM_PROPS, team_id: S.id }, ['team_id'])
const checkDelete = bodySchema({ team_ids: S.ids }, ['team_ids'])
const checkMemberAdd = bodySchema({ team_id: S.id, member: { anyOf: [MEMBER, { type: 'array', items: MEMBER, maxItems: MAX_IDS }] }, max_budget_in_team: S.money }, ['team_id', 'member'])
const checkMemberDelete = bodySchema({ team_id: S.id, user_id: S.idOrNull, user_email: S.text }, ['team_id'])
const checkBlock = bodySchema({ team_id: S.id }, ['team_id'])

interface MemberInput {
  role: 'admin' | 'user'
  user_id?: string | null
  user_email?: string | null
}

/** LiteLLM keeps a team's tags and guardrails in its metadata too. */
function withMetadataLists(metadata: unknown, body: Record<string, unknown>): Record<string, unknown> {
  const m = { ...((metadata as Record<string, unknown> | null) ?? {}) }
  if (Array.isArray(body.tags)) m.tags = body.tags
  if (Array.isArray(body.guardrails)) m.guardrails = body.guardrails
  return m
}

function isMember(team: TeamRecord, m: { user_id?: string | null; user_email?: string | null }): boolean {
  return team.members_with_roles.some((x) =>
    (!!m.user_id && x.user_id === m.user_id) || (!!m.user_email && x.user_email === m.user_email))
}

function checkMember(m: MemberInput): void {
  if (!m.user_id && !m.user_email) throw invalid('Either user id or user email must be provided for each member.', 'member')
}

/** A new user as LiteLLM creates one for a team member: internal_user, no budget. */
export function newUser(deps: Deps, fields: { user_id: string; user_email?: string | null; teams?: string[] }): UserRecord {
  return {
    ...budgetFields({}, deps.now()),
    user_id: fields.user_id,
    user_alias: null,
    user_email: fields.user_email ?? null,
    user_role: 'internal_user',
    teams: fields.teams ?? [],
    models: [],
  } as unknown as UserRecord
}

async function findUser(store: Store, m: MemberInput): Promise<UserRecord | null> {
  if (m.user_id) return store.get('user', m.user_id)
  const { rows } = await store.list('user', { where: { user_email: m.user_email! }, limit: 1 })
  return rows[0] ?? null
}

/**
 * Add members to a team: each user is found (by id, else email) or created, and gets the team in its `teams`.
 * Members already in the team are left as they are. Returns the updated team and the users touched.
 */
export async function addMembers(deps: Deps, store: Store, team: TeamRecord, members: readonly MemberInput[]): Promise<{ team: TeamRecord; users: UserRecord[] }> {
  const list: TeamMember[] = [...team.members_with_roles]
  const users: UserRecord[] = []
  for (const m of members) {
    let user = await findUser(store, m)
    if (!user) {
      user = newUser(deps, { user_id: m.user_id ?? newId(), user_email: m.user_email ?? null, teams: [team.team_id] })
      await store.insert('user', user)
    } else if (!user.teams.includes(team.team_id)) {
      user = (await store.update('user', user.user_id, { teams: [...user.teams, team.team_id], updated_at: iso(deps.now()) }))!
    }
    invalidate(deps, 'user', user.user_id)
    users.push(user)
    if (!list.some((x) => x.user_id === user!.user_id)) list.push({ user_id: user.user_id, user_email: m.user_email ?? user.user_email ?? null, role: m.role })
  }
  const updated = (await store.update('team', team.team_id, { members_with_roles: list, updated_at: iso(deps.now()) }))!
  invalidate(deps, 'team', team.team_id)
  return { team: updated, users }
}

/** Take a team out of a user's `teams`. */
async function dropTeamFromUser(deps: Deps, store: Store, userId: string | null, teamId: string): Promise<void> {
  if (!userId) return
  const user = await store.get('user', userId)
  if (!user || !user.teams.includes(teamId)) return
  await store.update('user', userId, { teams: user.teams.filter((t) => t !== teamId), updated_at: iso(deps.now()) })
  invalidate(deps, 'user', userId)
}

async function getTeam(store: Store, teamId: string): Promise<TeamRecord> {
  const team = await store.get('team', teamId)
  if (!team) throw notFound(`Team not found, passed team_id=${teamId}`, 'team_id')
  return team
}

async function setBlocked(deps: Deps, call: Call, blocked: boolean): Promise<TeamRecord> {
  const body = checkBlock(await call.body())
  const id = body.team_id as string
  await getTeam(call.store, id)
  const updated = await call.store.update('team', id, { blocked, updated_at: iso(deps.now()) })
  if (!updated) throw notFound(`Team not found, passed team_id=${id}`, 'team_id')
  invalidate(deps, 'team', id)
  return updated
}

async function createTeam(deps: Deps, store: Store, principal: Principal | null, body: Record<string, unknown>): Promise<TeamRecord> {
  const teamId = (body.team_id as string | null | undefined) ?? newId()
  if (await store.get('team', teamId)) throw conflict(`Team id = ${teamId} already exists. Please use a different team id.`, 'team_id')
  const members = (body.members_with_roles as MemberInput[] | null | undefined) ?? []
  members.forEach(checkMember)
  const record: Record<string, unknown> = {
    ...extras(body, HANDLED),
    ...budgetFields(body, deps.now()),
    spend: 0,
    team_id: teamId,
    team_alias: null,
    models: [],
    blocked: false,
    members_with_roles: [],
    admins: [],
    members: [],
    organization_id: null,
  }
  copyPresent(record, body, PLAIN)
  record.models ??= []
  record.blocked ??= false
  record.metadata = withMetadataLists(body.metadata, body)
  await store.insert('team', record as TeamRecord)
  invalidate(deps, 'team', teamId)
  // The admin user who creates a team becomes its admin, as in LiteLLM.
  const all = [...members]
  if (principal?.userId && !all.some((m) => m.user_id === principal.userId)) all.push({ role: 'admin', user_id: principal.userId })
  if (all.length === 0) return record as TeamRecord
  return (await addMembers(deps, store, record as TeamRecord, all)).team
}

export function teamApis(deps: Deps): Api[] {
  return [
    {
      method: 'POST', path: '/team/new', access: 'admin', name: 'newTeam',
      async run(call) {
        return createTeam(deps, call.store, call.principal, checkNew(await call.body()))
      },
    },
    {
      method: 'POST', path: '/team/update', access: 'admin', name: 'updateTeam',
      async run(call) {
        const body = checkUpdate(await call.body())
        const id = body.team_id as string
        const team = await getTeam(call.store, id)
        const now = deps.now()
        const patch: Record<string, unknown> = extras(body, HANDLED)
        copyPresent(patch, body, PLAIN)
        if (body.models === null) patch.models = []
        if (body.blocked === null) patch.blocked = false
        const spendOrPeriod = budgetPatch(patch, body, now)
        if (body.metadata !== undefined || body.tags !== undefined || body.guardrails !== undefined) {
          patch.metadata = withMetadataLists(body.metadata !== undefined ? body.metadata : team.metadata, body)
        }
        patch.updated_at = iso(now)
        const updated = await call.store.update('team', id, patch)
        if (!updated) throw notFound(`Team not found, passed team_id=${id}`, 'team_id')
        invalidate(deps, 'team', id)
        if (spendOrPeriod) spendSet(deps, 'team', updated, id)
        return { team_id: id, data: updated }
      },
    },
    {
      method: 'POST', path: '/team/delete', access: 'admin', name: 'deleteTeams',
      async run(call) {
        const body = checkDelete(await call.body())
        const ids = body.team_ids as string[]
        // Every team must exist before anything is deleted.
        const teams: TeamRecord[] = []
        for (const id of ids) teams.push(await getTeam(call.store, id))
        for (const team of teams) {
          for (const k of await allRows(call.store, 'key', { team_id: team.team_id })) {
            await call.store.delete('key', k.token)
            invalidate(deps, 'key', k.token)
          }
          for (const m of team.members_with_roles) await dropTeamFromUser(deps, call.store, m.user_id, team.team_id)
          await call.store.delete('team', team.team_id)
          invalidate(deps, 'team', team.team_id)
        }
        return { deleted_teams: ids }
      },
    },
    {
      method: 'GET', path: '/team/info', access: 'read', name: 'teamInfo',
      async run(call) {
        const id = queryRequired(call.ctx, 'team_id')
        const team = await call.store.get('team', id)
        if (!team) throw notFound(`Team not found, passed team id: ${id}.`, 'team_id')
        const keys = await allRows(call.store, 'key', { team_id: id })
        return { team_id: id, team_info: team, keys, team_memberships: [] }
      },
    },
    {
      method: 'GET', path: '/team/list', access: 'read', name: 'listTeams',
      async run(call) {
        const userId = queryString(call.ctx, 'user_id')
        const orgId = queryString(call.ctx, 'organization_id')
        let teams = await allRows(call.store, 'team', orgId !== undefined ? { organization_id: orgId } : undefined)
        if (userId !== undefined) teams = teams.filter((t) => t.members_with_roles.some((m) => m.user_id === userId))
        const out = []
        for (const t of teams) out.push({ ...t, keys: await allRows(call.store, 'key', { team_id: t.team_id }), team_memberships: [] })
        return out
      },
    },
    {
      method: 'POST', path: '/team/member_add', access: 'admin', name: 'addTeamMember',
      async run(call) {
        const body = checkMemberAdd(await call.body())
        const team = await getTeam(call.store, body.team_id as string)
        const single = !Array.isArray(body.member)
        const members = (single ? [body.member] : body.member) as MemberInput[]
        members.forEach(checkMember)
        const fresh = members.filter((m) => !isMember(team, m))
        if (fresh.length === 0) {
          const m = members[0]
          throw conflict(single
            ? `User already in team. Member: user_id=${m?.user_id ?? null}, user_email=${m?.user_email ?? null}.`
            : 'All users are already in team.', 'member')
        }
        const { team: updated, users } = await addMembers(deps, call.store, team, fresh)
        return { ...updated, updated_users: users, updated_team_memberships: [] }
      },
    },
    {
      method: 'POST', path: '/team/member_delete', access: 'admin', name: 'deleteTeamMember',
      async run(call) {
        const body = checkMemberDelete(await call.body())
        const id = body.team_id as string
        const userId = body.user_id as string | null | undefined
        const email = body.user_email as string | null | undefined
        if (!userId && !email) throw invalid('Either user_id or user_email needs to be passed in.', 'user_id')
        const team = await call.store.get('team', id)
        if (!team) throw invalid(`Team id=${id} does not exist in db`, 'team_id')
        const gone = team.members_with_roles.filter((m) => (!!userId && m.user_id === userId) || (!!email && m.user_email === email))
        if (gone.length === 0) throw invalid('User not found in team', userId ? 'user_id' : 'user_email')
        const updated = await call.store.update('team', id, {
          members_with_roles: team.members_with_roles.filter((m) => !gone.includes(m)),
          updated_at: iso(deps.now()),
        })
        invalidate(deps, 'team', id)
        for (const m of gone) await dropTeamFromUser(deps, call.store, m.user_id, id)
        return updated
      },
    },
    {
      method: 'POST', path: '/team/block', access: 'admin', name: 'blockTeam',
      run: (call) => setBlocked(deps, call, true),
    },
    {
      method: 'POST', path: '/team/unblock', access: 'admin', name: 'unblockTeam',
      run: (call) => setBlocked(deps, call, false),
    },
  ]
}
