import t from 'tap'
import { gatewayError, RateLimitError } from '../../core/errors.js'
t.test('error table', async (t) => {
  const e = gatewayError('GW_ERR_RATE_LIMIT', 'x')
  t.ok(e instanceof RateLimitError)
  t.equal(e.status, 429)
})
