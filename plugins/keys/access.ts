/**
 * Who may call what on the management API.
 *
 * - the master key, an open gateway (no master key: LiteLLM treats every caller as admin) and a virtual key whose
 *   user has the role `proxy_admin`: everything;
 * - a key whose user is `proxy_admin_viewer`: the reading routes (GET, /budget/info);
 * - any other key: /key/info about itself (or another key of its own user) and /user/info about its own user.
 *
 * Everything else is 403 in the OpenAI error shape. A missing or wrong key never gets here: auth answers 401.
 */
import { gatewayError } from '../../core/errors.js'
import type { Principal } from '../../core/state.js'

/** What a route needs: `admin` to change anything, `read` to look, `self` = callers may look at their own. */
export type Access = 'admin' | 'read' | 'self'

export function isAdmin(p: Principal | null): boolean {
  return !!p && (p.kind === 'master' || p.kind === 'anonymous' || p.role === 'proxy_admin')
}

export function canRead(p: Principal | null): boolean {
  return isAdmin(p) || p?.role === 'proxy_admin_viewer'
}

function forbidden(p: Principal | null, route: string): never {
  throw gatewayError('GW_ERR_FORBIDDEN',
    `Only proxy admins may call ${route}. Your role=${p?.role ?? 'none'}; a key can only read its own /key/info and /user/info.`,
    { openaiCode: 'admin_only' })
}

/** Throws 403 unless the principal may call a route needing `access` (`self` routes check the target themselves). */
export function checkAccess(p: Principal | null, access: Access, route: string): void {
  if (access === 'admin' ? isAdmin(p) : access === 'read' ? canRead(p) : !!p) return
  forbidden(p, route)
}

/** For `self` routes: a reader may see anything; others only what `own` says is theirs. */
export function checkOwn(p: Principal | null, own: boolean, route: string): void {
  if (own || canRead(p)) return
  forbidden(p, route)
}
