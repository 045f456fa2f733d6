/**
 * The SDK's parameter and result types, as a caller meets them: `messages` typed with the official client's
 * ChatCompletionMessageParam[] or written as plain literals (no `as const`), `tools` as ChatCompletionTool[], and
 * `embedding()` whose vectors are `number[]` unless base64 was asked for. The `// @ts-expect-error` lines prove
 * wrong shapes are still rejected (an unused one is itself an error).
 *
 * The project's `tsc --noEmit` covers this file; the first test also type-checks it with tsc, so `npx tap` on this
 * file alone fails when the types regress. The other tests run the same calls for real.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions'
import { completion, embedding, BadRequestError, InternalServerError, GatewayError, type ChatChunk } from '../core/index.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')

// Typed with the official client's types.
const typed: ChatCompletionMessageParam[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: [{ type: 'text', text: 'What is the weather in Paris?' }] },
]
const tools: ChatCompletionTool[] = [{
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
}]
// Plain literals, no `as const`: `role` is inferred as string.
const plain = [{ role: 'user', content: 'hi' }]
const plainTools = [{ type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } }]

/** Never called: the type checker is the assertion. */
export function rejectedShapes(): void {
  // @ts-expect-error messages must be an array
  void completion({ model: 'mock/x', messages: 'hi' })
  // @ts-expect-error a message needs a role
  void completion({ model: 'mock/x', messages: [{ content: 'hi' }] })
  // @ts-expect-error content is text or content parts
  void completion({ model: 'mock/x', messages: [{ role: 'user', content: 42 }] })
  // @ts-expect-error model is required
  void completion({ messages: plain })
  // @ts-expect-error a tool needs its type
  void completion({ model: 'mock/x', messages: plain, tools: [{ function: { name: 'f' } }] })
  // @ts-expect-error a function tool needs a name
  void completion({ model: 'mock/x', messages: plain, tools: [{ type: 'function', function: { description: 'f' } }] })
  // @ts-expect-error input is text or tokens
  void embedding({ model: 'mock/e', input: { text: 'x' } })
}

t.test('this file type-checks (strict, as the project compiles tests)', async (t) => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const args = [tsc, '--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
    '--lib', 'ES2023', '--types', 'node', '--skipLibCheck', '--esModuleInterop', '--resolveJsonModule', fileURLToPath(import.meta.url)]
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d))
  child.stderr.on('data', (d: Buffer) => (out += d))
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  t.teardown(() => {
    clearTimeout(killer)
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
  t.equal(code, 0, 'tsc exits 0', { output: out.slice(0, 3000) })
})

t.test('messages and tools typed with the official client, and plain literals', async (t) => {
  const r = await completion({ model: 'mock/x', messages: typed, tools, tool_choice: 'required' })
  const call = r.choices[0]!.message.tool_calls![0]!
  t.equal(call.function.name, 'get_weather')

  // The assistant message goes back into the history as it came, beside typed and plain messages.
  const history = [...typed, r.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"temp":21}' }]
  const answer = await completion({ model: 'mock/x', messages: history, tools })
  const text: string | null = answer.choices[0]!.message.content
  t.equal(typeof text, 'string', 'after the tool result: text')

  const p = await completion({ model: 'mock/x', messages: plain, tools: plainTools, tool_choice: 'none' })
  t.equal(p.choices[0]!.finish_reason, 'stop')

  const chunks: ChatChunk[] = []
  for await (const c of await completion({ model: 'mock/x', messages: plain, stream: true })) chunks.push(c)
  t.ok(chunks.length > 1)
})

t.test('embedding(): number[] by default, string for base64', async (t) => {
  const floats = await embedding({ model: 'mock/e', input: 'x', dimensions: 4 })
  const v: number[] = floats.data[0]!.embedding
  t.equal(v.length, 4)
  t.equal(typeof v[0], 'number')

  const b64 = await embedding({ model: 'mock/e', input: 'x', dimensions: 4, encoding_format: 'base64' })
  const s: string = b64.data[0]!.embedding
  t.equal(Buffer.from(s, 'base64').length, 16, '4 float32 values')

  // @ts-expect-error base64 vectors are strings
  const notNumbers: number[] = b64.data[0]!.embedding
  // @ts-expect-error float vectors are not strings
  const notString: string = floats.data[0]!.embedding
  t.equal(typeof notNumbers, 'string')
  t.ok(Array.isArray(notString))
})

t.test('unexpected exceptions become GatewayErrors, never a raw TypeError', async (t) => {
  const nullMessages = await completion({ model: 'mock/x', messages: null as never }).catch((e: unknown) => e)
  t.ok(nullMessages instanceof BadRequestError, 'messages: null is a BadRequestError')

  const notAnObject = await completion(null as never).catch((e: unknown) => e)
  t.ok(notAnObject instanceof BadRequestError, 'no parameters at all is a BadRequestError')
  t.match((notAnObject as Error).message, /completion\(\) takes one object/)

  // A getter that throws while the SDK reads the arguments: the caller's input, so a 400 that keeps the cause.
  const getter = await completion({
    model: 'mock/x', messages: [{ role: 'user', get content(): string { throw new TypeError('bad content') } }],
  }).catch((e: unknown) => e)
  t.ok(getter instanceof BadRequestError, 'a TypeError from reading the input is a BadRequestError')
  t.type((getter as GatewayError).cause, TypeError)

  const signal = await completion({ model: 'mock/x', messages: plain, signal: {} as never }).catch((e: unknown) => e)
  t.ok(signal instanceof BadRequestError, 'a signal that is no AbortSignal is a 400')
  t.equal((signal as GatewayError).param, 'signal')

  const base = await completion({ model: 'openai/gpt-4o', messages: plain, api_base: 'not a url', api_key: 'sk-x' }).catch((e: unknown) => e)
  t.ok(base instanceof BadRequestError, 'an api_base that is no URL is a 400, not a connection error')
  t.equal((base as GatewayError).param, 'api_base')

  // A throw inside the provider (the mock reads the tool's parameters while answering): a 500 with the cause.
  const boom = new Error('provider bug')
  const inside = await completion({
    model: 'mock/x', messages: plain, tool_choice: 'required',
    tools: [{ type: 'function', function: { name: 'f', get parameters(): Record<string, unknown> { throw boom } } }],
  }).catch((e: unknown) => e)
  t.ok(inside instanceof InternalServerError, 'InternalServerError')
  t.equal((inside as GatewayError).status, 500)
  t.equal((inside as GatewayError).cause, boom, 'the original is the cause')
})
