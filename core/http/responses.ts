/**
 * The OpenAI Responses API over any chat model: `POST /v1/responses`, `GET /v1/responses/{id}`,
 * `GET /v1/responses/{id}/input_items` and `DELETE /v1/responses/{id}`.
 *
 * A request is translated to the chat form before the request chain (core/formats/responses-request.ts), so every
 * plugin acts on it as on a chat call; the reply is translated back (responses-reply.ts). Conversation state is the
 * gateway's: each response is stored (unless `store: false`) with the conversation it answered, and a request with
 * `previous_response_id` continues it, so the client sends only the new turn, as with OpenAI's own API.
 *
 * Storage is the store plugin's (SQLite or PostgreSQL; StoredResponse in core/store.ts), so a conversation survives
 * restarts and spans replicas. Without a store, or while it is down, responses are kept in memory (an LRU of the
 * newest RESPONSES_IN_MEMORY). A stored response is visible to the key that created it and to admins only.
 */
import { LRUCache } from 'lru-cache'
import type { Cradle } from '../container.js'
import { gatewayError } from '../errors.js'
import type { AttemptHandler } from '../pipeline.js'
import type { GatewayMiddleware } from '../plugin.js'
import type { ChatChunk, ChatCompletion } from '../openai/types.js'
import type { GatewayState, Principal } from '../state.js'
import type { StoredResponse } from '../store.js'
import { inputItems, responsesToChat, type ResponseItem } from '../formats/responses-request.js'
import { chatToResponse, outputItems, responseId, ResponsesStreamWriter, type ResponseOptions } from '../formats/responses-reply.js'
import { modelCaller, type TerminalDeps } from './handlers.js'
import { captured, outputChars, writeEvents, type GatewayContext } from './respond.js'
import { StreamCapture } from '../openai/capture.js'
import { isToolCallEvent, type ToolCallEvent } from '../openai/tool-events.js'
import type { RouteDef, RouteFormat } from './routes.js'
import { isGatewayField } from '../../providers/param-map.js'

/** Responses kept in memory when no store keeps them: the newest 1,000. */
const RESPONSES_IN_MEMORY = 1_000

/** What the handler needs of the request beyond the chat form it ran. */
interface Turn {
  request: Record<string, unknown>
  /** The conversation's input up to and including this turn (stored with the response). */
  input: ResponseItem[]
  /** The previous response's owner, checked against the caller once auth has run. */
  previousOwner: string | null | undefined
}

/** Responses in the store plugin's database, with memory for a gateway without one (or while it is down). */
class ResponseStore {
  private readonly memory = new LRUCache<string, StoredResponse>({ max: RESPONSES_IN_MEMORY })
  constructor(private readonly cradle: Cradle) {}

  private get db() {
    const s = this.cradle.store
    return s?.putResponse && s.getResponse && s.deleteResponse ? s : null
  }

  /** Stored in the database when there is one; in memory when not, or when the write fails (logged). */
  async put(r: StoredResponse): Promise<void> {
    const db = this.db
    if (db) {
      try {
        await db.putResponse!(r)
        this.memory.delete(r.id)
        return
      } catch (err) {
        this.cradle.logger.warn('could not store a response; kept in this process only', { id: r.id, err })
      }
    }
    this.memory.set(r.id, r)
  }

  async get(id: string): Promise<StoredResponse | null> {
    const mem = this.memory.get(id)
    if (mem) return mem
    const db = this.db
    if (!db) return null
    try {
      return await db.getResponse!(id)
    } catch (err) {
      throw gatewayError('GW_ERR_STORE_UNAVAILABLE', 'The response store is unavailable; retry shortly.', { cause: err })
    }
  }

  async delete(id: string): Promise<boolean> {
    const inMemory = this.memory.delete(id)
    const db = this.db
    if (!db) return inMemory
    try {
      return (await db.deleteResponse!(id)) || inMemory
    } catch (err) {
      throw gatewayError('GW_ERR_STORE_UNAVAILABLE', 'The response store is unavailable; retry shortly.', { cause: err })
    }
  }
}

/** Who owns what a caller stores: its virtual key's hash, else its principal id ('master', a static key's id). */
function ownerOf(p: Principal | null): string | null {
  return p ? (p.token ?? p.id) : null
}

/**
 * A stored response is its creator's; the master key and admins see every one (a viewer may read, not delete).
 * owner null: stored by a gateway without auth, open to all.
 */
function mayUse(owner: string | null, p: Principal | null, write = false): boolean {
  if (owner === null || !p) return true
  if (p.kind === 'master' || p.role === 'proxy_admin' || (!write && p.role === 'proxy_admin_viewer')) return true
  return ownerOf(p) === owner
}

function notFound(id: string): never {
  throw gatewayError('GW_ERR_NOT_FOUND', `Response with id '${id}' not found.`, { param: 'response_id' })
}

export function responsesRoutes(cradle: Cradle, attempt: AttemptHandler, deps: TerminalDeps): RouteDef[] {
  const caller = modelCaller('chat', cradle, attempt, deps)
  const store = new ResponseStore(cradle)
  const turns = new WeakMap<GatewayState, Turn>()

  const format: RouteFormat = {
    name: 'responses',
    async toOpenAI(ctx, body) {
      if (typeof body.model !== 'string' || body.model === '') {
        throw gatewayError('GW_ERR_VALIDATION', "Missing required parameter: 'model'.", { param: 'model' })
      }
      const input = inputItems(body)
      if (body.store !== undefined && body.store !== null && typeof body.store !== 'boolean') {
        throw gatewayError('GW_ERR_VALIDATION', "Invalid 'store': expected a boolean.", { param: 'store' })
      }
      const md = body.metadata
      if (md !== undefined && md !== null && (typeof md !== 'object' || Array.isArray(md))) {
        throw gatewayError('GW_ERR_VALIDATION', "Invalid 'metadata': expected an object of strings.", { param: 'metadata' })
      }
      let history: ResponseItem[] = []
      let previousOwner: string | null | undefined
      const prevId = body.previous_response_id
      if (prevId !== undefined && prevId !== null) {
        if (typeof prevId !== 'string' || prevId === '') {
          throw gatewayError('GW_ERR_VALIDATION', "Invalid 'previous_response_id': expected a response id.", { param: 'previous_response_id' })
        }
        const prev = await store.get(prevId)
        if (!prev) throw previousNotFound(prevId)
        previousOwner = prev.owner
        history = [...prev.input, ...outputItems(prev.response)]
      }
      const chat = responsesToChat(body, history, input)
      // LiteLLM's own fields (priority, num_retries, timeout, fallbacks, metadata and its tags, mock_response, ...)
      // act on the call as on any chat request; the gateway strips them before the provider call.
      for (const k in body) if (chat[k] === undefined && isGatewayField(k)) chat[k] = body[k]
      if (chat.stream === true) chat.stream_options = { include_usage: true }
      turns.set(ctx.state, { request: body, input: [...history, ...input], previousOwner })
      return chat
    },
  }

  /** Store the response (unless the request said `store: false`) before the client can ask for it. */
  async function save(state: GatewayState, turn: Turn, response: Record<string, unknown>): Promise<void> {
    if (turn.request.store === false) return
    await store.put({
      id: response.id as string,
      owner: ownerOf(state.principal),
      created_at: new Date(state.startedAt).toISOString(),
      response,
      input: turn.input,
    })
  }

  const createResponse: GatewayMiddleware = async function createResponse(ctx: GatewayContext) {
    const state = ctx.state
    const turn = turns.get(state)
    if (!turn) throw gatewayError('GW_ERR_INTERNAL', 'a Responses request reached its handler untranslated')
    const prevId = turn.request.previous_response_id as string | undefined
    if (turn.previousOwner !== undefined && !mayUse(turn.previousOwner, state.principal)) throw previousNotFound(prevId!)
    // MCP tools (the MCP plugin ran before this handler): the lists now, the calls as the model turns run them.
    const o: ResponseOptions = {
      id: responseId(), createdAt: Math.floor(state.startedAt / 1000), model: String(turn.request.model), request: turn.request,
      toolLists: state.toolLists, toolCalls: state.toolCalls,
    }
    const { result, served } = await caller.call(ctx)
    if (result.kind === 'json') {
      const reply = result.body as ChatCompletion
      state.usage = result.usage
      if (state.captureReply) state.reply = reply
      if (result.usage === null) state.outputChars += outputChars(reply)
      caller.price(ctx, served, reply)
      const response = chatToResponse(reply, o)
      await save(state, turn, response)
      ctx.body = response
      return
    }
    if (result.kind !== 'stream') throw gatewayError('GW_ERR_INTERNAL', `a ${result.kind} reply reached /v1/responses`)
    const writer = new ResponsesStreamWriter(o)
    if (state.captureReply) state.reply = new StreamCapture()
    let opened = ''
    const open = () => {
      const text = opened === '' ? (opened = writer.start()) : ''
      return text
    }
    await writeEvents(ctx, result.chunks as AsyncIterable<ChatChunk | ToolCallEvent>, (c) => {
      if (isToolCallEvent(c)) return open() + writer.toolCall(c.call)
      if (state.reply !== null) captured(state, c)
      if (c.usage) state.usage = c.usage
      else if (state.usage === null) state.outputChars += outputChars(c)
      return open() + writer.chunk(c)
    }, async () => {
      const head = open()
      const { text, response } = writer.end(state.usage)
      await save(state, turn, response)
      return head + text
    }, (e) => open() + writer.error(e))
    caller.price(ctx, served, null)
  }

  const getResponse: GatewayMiddleware = async function getResponse(ctx: GatewayContext) {
    const id = (ctx as unknown as { params: { id: string } }).params.id
    const rec = await store.get(id)
    if (!rec || !mayUse(rec.owner, ctx.state.principal)) notFound(id)
    ctx.body = rec.response
  }

  const inputItemsRoute: GatewayMiddleware = async function listInputItems(ctx: GatewayContext) {
    const id = (ctx as unknown as { params: { id: string } }).params.id
    const rec = await store.get(id)
    if (!rec || !mayUse(rec.owner, ctx.state.principal)) notFound(id)
    ctx.body = itemPage(rec.input, ctx.query)
  }

  const deleteResponse: GatewayMiddleware = async function deleteResponse(ctx: GatewayContext) {
    const id = (ctx as unknown as { params: { id: string } }).params.id
    const rec = await store.get(id)
    if (!rec || !mayUse(rec.owner, ctx.state.principal, true)) notFound(id)
    await store.delete(id)
    ctx.body = { id, object: 'response', deleted: true }
  }

  return [
    { method: 'POST', path: ['/v1/responses', '/responses'], kind: 'chat', body: true, format, handler: createResponse },
    { method: 'GET', path: ['/v1/responses/:id', '/responses/:id'], kind: 'other', handler: getResponse },
    { method: 'GET', path: ['/v1/responses/:id/input_items', '/responses/:id/input_items'], kind: 'other', handler: inputItemsRoute },
    { method: 'DELETE', path: ['/v1/responses/:id', '/responses/:id'], kind: 'other', handler: deleteResponse },
  ]
}

function previousNotFound(id: string) {
  return gatewayError('GW_ERR_VALIDATION', `Previous response with id '${id}' not found.`, { param: 'previous_response_id' })
}

/** Items get ids when they come without (input given as text): `<kind>_<index>` is stable for a stored list. */
function withIds(items: readonly ResponseItem[]): ResponseItem[] {
  return items.map((it, i) => (typeof it.id === 'string' ? it : { id: `item_${i}`, ...it }))
}

/**
 * One page of a response's input items, as OpenAI lists them: `order` 'desc' (default) or 'asc', `limit` 1-100
 * (default 20), `after` an item id; `{object:'list', data, first_id, last_id, has_more}`.
 */
function itemPage(input: readonly ResponseItem[], query: Record<string, unknown>): Record<string, unknown> {
  const order = query.order === 'asc' ? 'asc' : query.order === undefined || query.order === 'desc' ? 'desc' : null
  if (order === null) throw gatewayError('GW_ERR_VALIDATION', "Invalid 'order': expected 'asc' or 'desc'.", { param: 'order' })
  const limit = query.limit === undefined ? 20 : Number(query.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw gatewayError('GW_ERR_VALIDATION', "Invalid 'limit': expected an integer from 1 to 100.", { param: 'limit' })
  }
  let items = withIds(input)
  if (order === 'desc') items = items.reverse()
  if (typeof query.after === 'string') {
    const at = items.findIndex((it) => it.id === query.after)
    items = at === -1 ? [] : items.slice(at + 1)
  }
  const data = items.slice(0, limit)
  return {
    object: 'list', data,
    first_id: (data[0]?.id as string | undefined) ?? null,
    last_id: (data[data.length - 1]?.id as string | undefined) ?? null,
    has_more: items.length > limit,
  }
}
