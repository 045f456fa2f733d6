/**
 * The error table: every code builds an instance of its class with the table's status and OpenAI type, renders as
 * OpenAI's error body, and upstream statuses map to the classes the OpenAI SDK uses for them.
 */
import t from 'tap'
import {
  ERRORS, gatewayError, asGatewayError, toErrorBody, codeForUpstreamStatus, GatewayError, RateLimitError,
  BadRequestError, ContextWindowExceededError, AuthenticationError, NotFoundError, Timeout, ServiceUnavailableError,
  InternalServerError, APIError, type ErrorCode,
} from '../../core/errors.js'

t.test('every table row builds its class with its status and type', async (t) => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const e = gatewayError(code, `message for ${code}`, { param: 'p' })
    const def = ERRORS[code]
    t.ok(e instanceof def.cls, `${code} is a ${def.cls.name}`)
    t.ok(e instanceof GatewayError)
    t.equal(e.status, def.status, `${code} status`)
    t.equal(e.code, code)
    const body = toErrorBody(e)
    t.same(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'], `${code} renders the OpenAI shape`)
    t.equal(body.error.type, def.type)
    t.equal(body.error.param, 'p')
    t.equal(body.error.message, `message for ${code}`)
  }
})

t.test('class hierarchy and names follow the OpenAI SDK', async (t) => {
  const cw = gatewayError('GW_ERR_CONTEXT_WINDOW', 'too long')
  t.ok(cw instanceof ContextWindowExceededError)
  t.ok(cw instanceof BadRequestError, 'a context-window error is a bad request')
  t.equal(cw.name, 'ContextWindowExceededError')
  t.equal(toErrorBody(cw).error.code, 'context_length_exceeded')
  const rl = gatewayError('GW_ERR_RATE_LIMIT', 'slow down', { retryAfter: 3 })
  t.ok(rl instanceof RateLimitError)
  t.equal(rl.retryAfter, 3)
  t.ok(rl.retryable)
  t.notOk(gatewayError('GW_ERR_VALIDATION', 'x').retryable)
  t.notOk(gatewayError('GW_ERR_CONFIG_INVALID', 'x').retryable, 'boot errors are never retried')
})

t.test('unknown throwables become a 500 that hides the cause from the client', async (t) => {
  const e = asGatewayError(new Error('secret internals'))
  t.ok(e instanceof InternalServerError)
  t.equal(e.status, 500)
  t.notMatch(toErrorBody(e).error.message, /secret/)
  t.equal((e.cause as Error).message, 'secret internals', 'the cause is kept for logs')
  const same = gatewayError('GW_ERR_AUTH', 'x')
  t.equal(asGatewayError(same), same)
})

t.test('upstream statuses map to the SDK classes', async (t) => {
  const cases: Array<[number, new (...a: never[]) => GatewayError, number]> = [
    [400, BadRequestError, 400], [401, AuthenticationError, 401], [404, NotFoundError, 404], [408, Timeout, 408],
    [429, RateLimitError, 429], [500, InternalServerError, 500], [503, ServiceUnavailableError, 503],
    [529, ServiceUnavailableError, 503], [502, APIError, 502], [504, Timeout, 408],
  ]
  for (const [status, cls, out] of cases) {
    const e = gatewayError(codeForUpstreamStatus(status), 'x')
    t.ok(e instanceof cls, `${status} -> ${cls.name}`)
    t.equal(e.status, out)
  }
})
