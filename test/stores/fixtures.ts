/**
 * LiteLLM-shaped records and spend rows for the store contract: every field LiteLLM's tables carry, including ones
 * the store has no column for (aliases, config, permissions...), so a round trip shows nothing is dropped.
 * Timestamps are in Date#toISOString form, the form stores hand back.
 */
import { createHash } from 'node:crypto'
import type {
  BudgetRecord, EndUserRecord, KeyRecord, ModelRecord, SpendLogRow, TeamRecord, UserRecord,
} from '../../core/store.js'

export const T0 = '2024-05-01T10:00:00.000Z'

export function tokenOf(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

const budget = {
  max_budget: null, soft_budget: null, spend: 0, budget_duration: null, budget_reset_at: null, tpm_limit: null,
  rpm_limit: null, max_parallel_requests: null, budget_id: null, metadata: {}, created_at: T0, updated_at: T0,
}

export function keyRecord(name: string, over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    ...budget,
    token: tokenOf(`sk-${name}`), key_name: `sk-...${name.slice(-4)}`, key_alias: null, user_id: null, team_id: null,
    models: ['gpt-4o-mini'], blocked: null, expires: null, allowed_routes: [], model_max_budget: {}, model_spend: {},
    created_by: 'admin', aliases: {}, config: {}, permissions: { allow_pii: false }, allowed_cache_controls: [],
    soft_budget_cooldown: false, organization_id: null, updated_by: 'admin',
    ...over,
  }
}

export function teamRecord(id: string, over: Partial<TeamRecord> = {}): TeamRecord {
  return {
    ...budget,
    team_id: id, team_alias: null, models: [], blocked: false,
    members_with_roles: [{ user_id: 'u-admin', user_email: 'admin@example.com', role: 'admin' }],
    admins: ['u-admin'], members: [], organization_id: null, model_aliases: null, model_id: null,
    ...over,
  }
}

export function userRecord(id: string, over: Partial<UserRecord> = {}): UserRecord {
  return {
    ...budget,
    user_id: id, user_alias: null, user_email: `${id}@example.com`, user_role: 'internal_user', teams: [], models: [],
    sso_user_id: null, organization_memberships: [],
    ...over,
  }
}

export function endUserRecord(id: string, over: Partial<EndUserRecord> = {}): EndUserRecord {
  return {
    ...budget,
    user_id: id, alias: null, blocked: false, allowed_model_region: null, default_model: null,
    ...over,
  }
}

export function budgetRecord(id: string, over: Partial<BudgetRecord> = {}): BudgetRecord {
  return { ...budget, budget_id: id, model_max_budget: {}, created_by: 'admin', ...over }
}

export function modelRecord(id: string, over: Partial<ModelRecord> = {}): ModelRecord {
  return {
    model_id: id, model_name: 'gpt-4o-mini',
    litellm_params: { model: 'openai/gpt-4o-mini', api_base: 'http://127.0.0.1:1/v1', rpm: 100 },
    model_info: { id, db_model: true, input_cost_per_token: 1.5e-7 },
    created_at: T0, updated_at: T0, created_by: 'admin', updated_by: 'admin',
    ...over,
  }
}

let seq = 0

export function spendRow(over: Partial<SpendLogRow> = {}): SpendLogRow {
  seq++
  return {
    request_id: `req-${seq}`, call_type: 'chat', api_key: '', key_alias: null, team_id: null, user: null,
    end_user: null, model: 'gpt-4o-mini-2024-07-18', model_group: 'gpt-4o-mini', model_id: 'dep-1',
    custom_llm_provider: 'openai', api_base: 'https://api.openai.com/v1', prompt_tokens: 10, completion_tokens: 20,
    total_tokens: 30, cached_tokens: 0, reasoning_tokens: 0, spend: 0.25, cost_source: 'priced',
    startTime: T0, endTime: '2024-05-01T10:00:01.500Z', status: 'success', ttft_ms: 120,
    request_tags: ['prod'], metadata: { user_api_key_alias: null, requester_ip: '127.0.0.1' }, error: null,
    ...over,
  }
}
