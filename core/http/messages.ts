/**
 * The Anthropic Messages API over any model: `POST /v1/messages` and `POST /v1/messages/count_tokens`.
 *
 * The body is translated to the OpenAI chat form before the request chain (core/formats/anthropic-request.ts), so
 * auth, budgets, rate limits, priority, routing and fallbacks act on it as on any chat call, and the reply is
 * translated back (anthropic-reply.ts). A deployment that speaks the Messages API itself (the Anthropic adapter's
 * `native.anthropic`) gets the client's own body instead and its reply goes out as sent, with no round trip through
 * the chat form; a fallback to another provider in the same request is translated as usual. Errors on these routes
 * are in Anthropic's shape (`{"type":"error","error":{type,message}}`, core/http/server.ts).
 */
import type { Cradle } from '../container.js'
import { gatewayError, type GatewayError } from '../errors.js'
import type { AttemptHandler } from '../pipeline.js'
import type { GatewayMiddleware } from '../plugin.js'
import type { ChatChunk, ChatCompletion, Usage } from '../openai/types.js'
import { messagesToChat } from '../formats/anthropic-request.js'
import { AnthropicStreamWriter, anthropicErrorBody, chatToMessage, messageId, usageFromAnthropic } from '../formats/anthropic-reply.js'
import { promptTokensEstimate } from '../pricing/budget.js'
import { mayUseModel } from '../access.js'
import { readJsonBody } from './body.js'
import { modelCaller, type TerminalDeps } from './handlers.js'
import { captured, outputChars, writeEvents, type GatewayContext } from './respond.js'
import { StreamCapture } from '../openai/capture.js'
import type { RouteDef, RouteFormat } from './routes.js'
import type { SseEvent } from '../../providers/types.js'
import { parseLenient, postUpstream } from '../upstream/dispatch.js'

/** Client headers a native call forwards: the beta features the client asked for. */
function nativeHeaders(ctx: GatewayContext): Record<string, string> {
  const beta = ctx.get('anthropic-beta')
  return beta ? { 'anthropic-beta': beta } : {}
}

const anthropicFormat: RouteFormat = {
  name: 'anthropic',
  toOpenAI(ctx, body) {
    const chat = messagesToChat(body)
    ctx.state.native = { format: 'anthropic', body, headers: nativeHeaders(ctx) }
    // LiteLLM's own metadata (tags, trace ids) for spend logs and callbacks; user_id became `user`. The gateway
    // strips `metadata` before any provider call.
    const md = body.metadata as Record<string, unknown> | null | undefined
    if (md && typeof md === 'object' && !Array.isArray(md)) {
      const { user_id: _userId, ...rest } = md
      for (const _k in rest) {
        chat.metadata = rest
        break
      }
    }
    // The stream's final usage is needed for message_delta and for pricing.
    if (chat.stream === true) chat.stream_options = { include_usage: true }
    return chat
  },
}

/** Characters of an Anthropic stream event's JSON that are not output (type, index, delta type): ~60. */
const EVENT_ENVELOPE = 60

export function messagesRoutes(cradle: Cradle, attempt: AttemptHandler, deps: TerminalDeps): RouteDef[] {
  const caller = modelCaller('chat', cradle, attempt, deps)
  const { models, providers, dispatcher } = cradle

  const createMessage: GatewayMiddleware = async function createMessage(ctx: GatewayContext) {
    const state = ctx.state
    const { result, served } = await caller.call(ctx)
    const requested = String(state.native?.body.model ?? state.model)
    switch (result.kind) {
      case 'native': {
        state.usage = result.usage
        if (state.captureReply) state.reply = result.body
        caller.price(ctx, served, null)
        ctx.body = result.body
        return
      }
      case 'native-stream': {
        const meter = new NativeStreamMeter(state)
        await writeEvents(ctx, result.events, (ev) => meter.text(ev), noTail, (e) => errorEvent(e, state.requestId))
        meter.end()
        caller.price(ctx, served, null)
        return
      }
      case 'json': {
        const reply = result.body as ChatCompletion
        state.usage = result.usage
        if (state.captureReply) state.reply = reply
        if (result.usage === null) state.outputChars += outputChars(reply)
        caller.price(ctx, served, reply)
        ctx.body = chatToMessage(reply, reply.model || requested)
        return
      }
      case 'stream': {
        // Named after the first chunk's model, as a plain reply is after the upstream's (chat's rule too).
        const id = messageId()
        let writer: AnthropicStreamWriter | null = null
        if (state.captureReply) state.reply = new StreamCapture()
        const out = (model: string) => (writer ??= new AnthropicStreamWriter(model, id))
        await writeEvents(ctx, result.chunks as AsyncIterable<ChatChunk>, (c) => {
          if (state.reply !== null) captured(state, c)
          if (c.usage) state.usage = c.usage
          else if (state.usage === null) state.outputChars += outputChars(c)
          return out(c.model || requested).chunk(c)
        }, () => out(requested).end(state.usage), (e) => out(requested).error(e, state.requestId))
        caller.price(ctx, served, null)
        return
      }
      default:
        throw gatewayError('GW_ERR_INTERNAL', `a ${result.kind} reply reached /v1/messages`)
    }
  }

  /**
   * Token counting: an Anthropic deployment answers from its own count_tokens endpoint; any other model gets the
   * gateway's estimate of the translated prompt (UTF-8 bytes / 4, as budgets estimate it). Not a model call: no
   * spend, no rate limit.
   */
  const countTokens: GatewayMiddleware = async function countTokens(ctx: GatewayContext) {
    const body = await readJsonBody(ctx.req, cradle.config.server.body_limit, false)
    // count_tokens takes no max_tokens; the translation requires one.
    const chat = messagesToChat({ ...body, max_tokens: 1, stream: false })
    const model = chat.model
    if (!mayUseModel(ctx.state.principal, model, models.aliasOf)) {
      throw gatewayError('GW_ERR_FORBIDDEN', `This key cannot access model ${model}.`, { param: 'model' })
    }
    const target = models.resolve(model)[0]
    if (!target) throw gatewayError('GW_ERR_MODEL_NOT_FOUND', `The model \`${model}\` does not exist or you do not have access to it.`, { param: 'model' })
    const adapter = providers.forTarget(target, chat)
    const native = adapter.native?.anthropic
    if (!native || adapter.invoke) {
      ctx.body = { input_tokens: promptTokensEstimate('chat', chat) }
      return
    }
    // The count_tokens API takes the prompt's fields only; sampling settings would be refused as extra inputs.
    const payload: Record<string, unknown> = { model: target.model }
    for (const k of COUNT_FIELDS) if (body[k] !== undefined) payload[k] = body[k]
    const text = JSON.stringify(payload)
    let prepared = native.request(target, false, nativeHeaders(ctx), 'count_tokens')
    if (adapter.authorize) prepared = await adapter.authorize(prepared, text, target)
    const headers = { 'content-type': 'application/json', accept: 'application/json', ...prepared.headers }
    const res = await postUpstream(dispatcher, adapter, target, prepared.url, headers, text, false, ctx.state.signal)
    const reply = parseLenient(await res.body.text().catch(() => '')) as { input_tokens?: unknown } | null
    if (typeof reply?.input_tokens !== 'number') {
      throw gatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', `${target.provider} returned a token count without \`input_tokens\``, { provider: target.provider })
    }
    ctx.body = { input_tokens: reply.input_tokens }
  }

  return [
    { method: 'POST', path: ['/v1/messages', '/messages'], kind: 'chat', body: true, format: anthropicFormat, handler: createMessage },
    { method: 'POST', path: ['/v1/messages/count_tokens', '/messages/count_tokens'], kind: 'other', format: anthropicFormat, handler: countTokens },
  ]
}

/** What Anthropic's count_tokens takes besides the model (https://docs.anthropic.com/en/api/messages-count-tokens). */
const COUNT_FIELDS = ['messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers', 'context_management', 'output_format'] as const

const noTail = (): string => ''

function errorEvent(e: GatewayError, requestId: string): string {
  return `event: error\ndata: ${JSON.stringify(anthropicErrorBody(e, requestId))}\n\n`
}

/**
 * A native stream's events, written as received. Only the two events that carry usage are parsed (message_start:
 * input and cache tokens; message_delta: the final output count); content deltas are counted by length, so a
 * stream that ends before its message_delta (the client went away) is priced on what it delivered.
 */
class NativeStreamMeter {
  private final = false
  private chars = 0
  constructor(private readonly state: GatewayContext['state']) {}

  text(ev: SseEvent): string {
    const type = ev.event
    if (type === 'content_block_delta') this.chars += Math.max(0, ev.data.length - EVENT_ENVELOPE)
    else if (type === 'message_start' || type === 'message_delta') {
      const data = parseLenient(ev.data) as { message?: { usage?: unknown }; usage?: unknown } | null
      const u = usageFromAnthropic(type === 'message_start' ? data?.message?.usage : data?.usage)
      if (u) this.state.usage = type === 'message_delta' && this.state.usage ? mergeUsage(this.state.usage, u) : u
      if (type === 'message_delta') this.final = true
    }
    return type === undefined ? `data: ${ev.data}\n\n` : `event: ${type}\ndata: ${ev.data}\n\n`
  }

  /** A stream cut before message_delta: its output counted from the deltas (4 characters to a token). */
  end(): void {
    if (this.final) return
    const usage = this.state.usage
    if (!usage) {
      this.state.outputChars += this.chars
      return
    }
    const completion = Math.max(usage.completion_tokens, Math.ceil(this.chars / 4))
    this.state.usage = { ...usage, completion_tokens: completion, total_tokens: usage.prompt_tokens + completion }
  }
}

/**
 * message_start reports the input (and an output of 1 or so); message_delta the final output count and, with newer
 * API versions, the input again: the delta's input wins where it reports one.
 */
function mergeUsage(start: Usage, delta: Usage): Usage {
  const base = delta.prompt_tokens > 0 ? delta : start
  return { ...base, completion_tokens: delta.completion_tokens, total_tokens: base.prompt_tokens + delta.completion_tokens }
}
