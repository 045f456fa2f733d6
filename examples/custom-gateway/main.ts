/**
 * A gateway composed in code: bundled plugins (request-id, auth with a master key, router, retry) and an in-house
 * plugin defined right here, placed by the same `pipeline:` / `upstream:` lists a YAML config uses.
 *
 *   SWITCHYARD_MASTER_KEY=sk-demo npx tsx examples/custom-gateway/main.ts --port 4000
 *   curl -i localhost:4000/v1/chat/completions -H 'authorization: Bearer sk-demo' \
 *     -d '{"model":"mock","messages":[{"role":"user","content":"hi"}]}'
 */
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { createGateway, definePlugin, type Gateway, type ListenResult } from '../../core/index.js'

/**
 * upstream-timing: one plugin with two hooks. Its interceptor (attempt chain) times the upstream call, retries and
 * backoff included; its middleware (request chain) reports that as a response header and a Server-Timing entry.
 */
export const upstreamTiming = definePlugin<{ header: string }>({
  name: 'upstream-timing',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: { header: { type: 'string', minLength: 1, default: 'x-switchyard-upstream-ms' } },
  },
  interceptor() {
    return (next) => async function upstreamTiming(attempt) {
      const t0 = performance.now()
      try {
        return await next(attempt)
      } finally {
        const timings = attempt.state.timings
        timings.upstream_ms = (timings.upstream_ms ?? 0) + (performance.now() - t0)
      }
    }
  },
  middleware(_cradle, o) {
    return async function upstreamTimingHeader(ctx, next) {
      await next()
      const ms = ctx.state.timings.upstream_ms
      // A JSON body is sent after the chain unwinds, so headers can still be set; an SSE stream sent its own already.
      if (ms !== undefined && !ctx.headerSent) {
        ctx.set(o.header, ms.toFixed(1))
        ctx.set('server-timing', `upstream;dur=${ms.toFixed(1)}`)
      }
    }
  },
})

export interface BuildOptions {
  masterKey?: string
}

/** Build the gateway without listening (tests call this, then gateway.listen(0)). */
export function build({ masterKey = process.env.SWITCHYARD_MASTER_KEY ?? 'sk-demo' }: BuildOptions = {}): Promise<Gateway> {
  return createGateway({
    plugins: [upstreamTiming],
    config: {
      pipeline: ['request-id', { auth: { master_key: masterKey } }, 'upstream-timing', 'router'],
      // A plugin is listed once; its interceptor joins the attempt chain in list order (here: outside retry).
      upstream: [{ retry: { num_retries: 1 } }],
      model_list: [{ model_name: 'mock', litellm_params: { model: 'mock/mock-1' } }],
    },
  })
}

/** Start on a port from --port, else $PORT, else 4000; print the URL; stop cleanly on SIGINT/SIGTERM. */
export async function main(argv = process.argv.slice(2)): Promise<{ gateway: Gateway } & ListenResult> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string', short: 'p' }, host: { type: 'string' } } })
  const gateway = await build()
  const listening = await gateway.listen(Number(values.port ?? process.env.PORT ?? 4000), values.host ?? '127.0.0.1')
  console.log(`custom gateway listening on ${listening.url}`)
  return { gateway, ...listening }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { gateway } = await main()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void gateway.stop().then(() => process.exit(0)))
}
