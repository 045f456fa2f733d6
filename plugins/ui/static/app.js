/**
 * The admin app: the sign-in screen when there is no session, else the section nav and the page the location hash
 * names (#/keys ... #/live). A 401 from any API call re-checks /ui/session and goes back to sign-in when the session
 * has ended (expired, signed out elsewhere, key blocked).
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { currentSession, onUnauthorized, setCsrf, signIn, signOut } from './api.js'
import { ErrorBanner, Field, html, Loading } from './components.js'
import KeysPage from './pages/keys.js'
import TeamsPage from './pages/teams.js'
import UsersPage from './pages/users.js'
import EndUsersPage from './pages/end-users.js'
import BudgetsPage from './pages/budgets.js'
import ModelsPage from './pages/models.js'
import UsagePage from './pages/usage.js'
import LogsPage from './pages/logs.js'
import McpPage from './pages/mcp.js'
import LivePage from './pages/live.js'

const SECTIONS = [
  { path: 'keys', label: 'Keys', page: KeysPage },
  { path: 'teams', label: 'Teams', page: TeamsPage },
  { path: 'users', label: 'Users', page: UsersPage },
  { path: 'end-users', label: 'End users', page: EndUsersPage },
  { path: 'budgets', label: 'Budgets', page: BudgetsPage },
  { path: 'models', label: 'Models', page: ModelsPage },
  { path: 'usage', label: 'Usage', page: UsagePage },
  { path: 'logs', label: 'Logs', page: LogsPage },
  { path: 'mcp', label: 'MCP', page: McpPage },
  { path: 'live', label: 'Live', page: LivePage },
]

function routeOf(hash) {
  const path = (hash || '').replace(/^#\/?/, '').split(/[/?]/)[0]
  return SECTIONS.find((s) => s.path === path) ?? SECTIONS[0]
}

function useRoute() {
  const [route, setRoute] = useState(() => routeOf(location.hash))
  useEffect(() => {
    const on = () => setRoute(routeOf(location.hash))
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}

function SignIn({ onSignedIn, notice }) {
  const [key, setKey] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)
  async function submit(e) {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const s = await signIn(key.trim())
      setKey('')
      onSignedIn(s)
    } catch (err) {
      setError(err)
      setBusy(false)
    }
  }
  return html`<div class="signin">
    <form class="signin-card" onSubmit=${submit}>
      <h1>Switchyard admin</h1>
      <p class="intro">Sign in with the gateway's master key or the key of a user whose role is proxy_admin.</p>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <${Field} label="Master key or admin key" type="password" value=${key} onChange=${setKey} required autocomplete="current-password" name="key" />
      <${ErrorBanner} error=${error} />
      <button type="submit" class="primary" disabled=${busy || !key.trim()}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </div>`
}

function Shell({ session, onSignOut }) {
  const route = useRoute()
  const Page = route.page
  const [error, setError] = useState(null)
  async function out() {
    try {
      await signOut()
    } catch (err) {
      if (err?.status !== 401) {
        setError(err)
        return
      }
    }
    onSignOut()
  }
  useEffect(() => { document.title = `${route.label} · Switchyard admin` }, [route])
  return html`<div class="shell">
    <header class="topbar">
      <a class="brand" href="#/keys">Switchyard</a>
      <span class="role">Signed in as ${session.role === 'proxy_admin' ? 'admin' : session.role}</span>
      <button type="button" onClick=${out}>Sign out</button>
    </header>
    <div class="body">
      <nav aria-label="Sections" class="sidenav">
        <ul>
          ${SECTIONS.map((s) => html`<li key=${s.path}>
            <a href=${`#/${s.path}`} aria-current=${s === route ? 'page' : undefined}>${s.label}</a>
          </li>`)}
        </ul>
      </nav>
      <div class="content">
        <${ErrorBanner} error=${error} onDismiss=${() => setError(null)} />
        <${Page} key=${route.path} />
      </div>
    </div>
  </div>`
}

function App() {
  // undefined: checking; null: signed out; object: {role, csrf, expires_at}
  const [session, setSession] = useState(undefined)
  const [notice, setNotice] = useState(null)
  const [error, setError] = useState(null)

  function check() {
    currentSession().then(
      (s) => {
        setCsrf(s?.csrf)
        setSession(s)
      },
      (err) => {
        setError(err)
        setSession(null)
      },
    )
  }

  useEffect(() => {
    check()
    onUnauthorized(() => {
      // Only the session's end sends the user back to sign-in; a 401 for another reason is shown by the page.
      currentSession().then((s) => {
        if (!s) {
          setCsrf(null)
          setNotice('Your session has ended. Sign in again.')
          setSession(null)
        }
      }, () => {})
    })
  }, [])

  if (session === undefined) return html`<${Loading} />`
  if (!session) {
    return html`<div>
      <${ErrorBanner} error=${error} />
      <${SignIn} notice=${notice} onSignedIn=${(s) => {
        setCsrf(s.csrf)
        setNotice(null)
        setError(null)
        setSession(s)
        if (!location.hash) location.hash = '#/keys'
      }} />
    </div>`
  }
  return html`<${Shell} session=${session} onSignOut=${() => {
    setCsrf(null)
    setNotice('Signed out.')
    setSession(null)
  }} />`
}

const root = document.getElementById('app')
root.textContent = ''
render(html`<${App} />`, root)
