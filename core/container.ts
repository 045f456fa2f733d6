/**
 * The root awilix container: core singletons, resolved once at boot. Only the composition root (gateway.ts) touches
 * the container; plugins receive the cradle. Plugins add their own services by augmenting `Cradle`:
 *
 *   declare module 'switchyard' { interface Cradle { keyStore: KeyStore } }
 */
import { createContainer, asValue, InjectionMode, type AwilixContainer } from 'awilix'
import type { Dispatcher } from 'undici'
import type { Config } from './config/load.js'
import type { Logger } from './logger.js'
import type { ProviderRegistry } from '../providers/registry.js'
import type { ModelTable } from './models.js'
import type { GatewayState } from './state.js'
import type { Store } from './store.js'
import type { GroupEntry } from './pipeline.js'
import { createEventBus, type EventBus } from './events.js'
import { createPricing, DEFAULT_FALLBACK, type Pricing } from './pricing/index.js'

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

const SYSTEM_CLOCK: Clock = { now: Date.now }

export interface Cradle {
  config: Config
  logger: Logger
  /** undici dispatcher for every upstream call (an Agent: one keep-alive pool per origin). */
  dispatcher: Dispatcher
  providers: ProviderRegistry
  models: ModelTable
  /** The environment the gateway was created with (process.env unless createGateway got another). */
  env: Record<string, string | undefined>
  /** Prices of calls and token estimates for budgets (core/pricing). */
  pricing: Pricing
  /** Wall clock for budgets, expiries and resets (tests pass a fake one to createGateway). */
  clock: Clock
  /** Plugins' event bus (invalidations, budget alerts); see core/events.ts. */
  events: EventBus
  /** The store a store plugin registered (store-sqlite, store-postgres); null with none. */
  store: Store | null
  /**
   * A Redis client (ioredis) a state plugin registered (state-redis), for counters shared between replicas; null
   * with none. Typed loosely so the core does not depend on ioredis.
   */
  redis: import('ioredis').Redis | null
  /** Hooks that gate and order a fallback group as the request chain did the requested one (core/pipeline.ts). */
  groupEntries: GroupEntry[]
  /** Per-request scope only: the request's state and a logger bound to its request id. */
  state: GatewayState
  log: Logger
}

export function createRootContainer(values: Pick<Cradle, 'config' | 'logger' | 'dispatcher' | 'providers' | 'models'> & { env?: Cradle['env']; clock?: Clock }): AwilixContainer<Cradle> {
  const container = createContainer<Cradle>({ injectionMode: InjectionMode.PROXY, strict: true })
  container.register({
    config: asValue(values.config),
    logger: asValue(values.logger),
    dispatcher: asValue(values.dispatcher),
    providers: asValue(values.providers),
    models: asValue(values.models),
    env: asValue(values.env ?? process.env),
    clock: asValue(values.clock ?? SYSTEM_CLOCK),
    pricing: asValue(pricingFor(values.config, values.clock ?? SYSTEM_CLOCK)),
    events: asValue(createEventBus((event, err) => values.logger.error(`event listener failed: ${event}`, { err }))),
    store: asValue(null),
    redis: asValue(null),
    groupEntries: asValue([]),
  })
  return container
}

/** The pricing service, with the config's price for unpriced models (else the built-in fallback). */
function pricingFor(config: Config, clock: Clock): Pricing {
  const { unpriced_input_cost_per_token: input, unpriced_output_cost_per_token: output } = config.settings
  const fallback = input != null || output != null
    ? { inputPerToken: input ?? DEFAULT_FALLBACK.inputPerToken, outputPerToken: output ?? DEFAULT_FALLBACK.outputPerToken }
    : undefined
  return createPricing({ ...(fallback ? { fallback } : {}), now: () => clock.now() })
}
