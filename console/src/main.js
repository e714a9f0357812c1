// The console's shell: sign-in (token in sessionStorage), role detection, hash routing, layout.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { detectRole, getToken, setToken } from './api.js';
import { ErrorBox, Loading, html } from './ui.js';
import { AuditView } from './views/audit.js';
import { ObservationView } from './views/observation.js';
import { RunsView } from './views/runs.js';
import { SearchView } from './views/search.js';
import { SourcesView } from './views/sources.js';
import { TimelineView } from './views/timeline.js';

/** The current hash route: `#/timeline?source=x` → `{name: 'timeline', id: undefined, params}`. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const [name = 'sources', id] = path.split('/').map(decodeURIComponent);
  return { name: name || 'sources', id, params: Object.fromEntries(new URLSearchParams(query)) };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

const NAV = [
  ['sources', 'Sources'],
  ['timeline', 'Timeline'],
  ['search', 'Search'],
  ['runs', 'Runs'],
  ['audit', 'Audit'],
];

function SignIn({ onSignedIn, initialError }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setToken(token.trim());
    try {
      onSignedIn(await detectRole());
    } catch (err) {
      setToken('');
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>observd console</h1>
    <form onSubmit=${submit}>
      <p>This daemon requires a token. Paste the admin token, or the read-only token to browse without changing anything.
        It is kept in this tab only (sessionStorage) and sent as a bearer header.</p>
      <label>Token <input type="password" name="token" autocomplete="off" value=${token} onInput=${(e) => setValue(e.currentTarget.value)} required autofocus /></label>
      <button type="submit" disabled=${busy}>${busy ? 'Checking…' : 'Sign in'}</button>
      ${error && error.status !== 401 ? html`<${ErrorBox} error=${error} />` : null}
      ${error && error.status === 401 ? html`<div class="error" role="alert">That token was not accepted (${error.message}).</div>` : null}
    </form>
  </main>`;
}

function App() {
  const route = useRoute();
  const [auth, setAuth] = useState({ state: 'checking' });
  const check = () => {
    setAuth({ state: 'checking' });
    detectRole().then(
      (role) => setAuth({ state: 'ok', role }),
      (error) => setAuth(error.status === 401 ? { state: 'signin', error: getToken() ? error : null } : { state: 'error', error }),
    );
  };
  useEffect(check, []);
  useEffect(() => {
    const expired = () => setAuth((a) => (a.state === 'ok' ? { state: 'signin', error: null } : a));
    addEventListener('observd:unauthorized', expired);
    return () => removeEventListener('observd:unauthorized', expired);
  }, []);

  if (auth.state === 'checking') return html`<main><${Loading} label="Connecting to the daemon…" /></main>`;
  if (auth.state === 'error') return html`<main><${ErrorBox} error=${auth.error} retry=${check} /></main>`;
  if (auth.state === 'signin') {
    if (getToken()) setToken('');
    return html`<${SignIn} initialError=${auth.error} onSignedIn=${(role) => setAuth({ state: 'ok', role })} />`;
  }
  const role = auth.role;
  const signOut = () => {
    setToken('');
    setAuth({ state: 'signin' });
  };
  const props = { role, id: route.id, params: route.params };
  const view = {
    sources: SourcesView,
    timeline: TimelineView,
    observations: ObservationView,
    search: SearchView,
    runs: RunsView,
    audit: AuditView,
  }[route.name];
  const active = route.name === 'observations' ? 'timeline' : route.name;
  return html`<div class="shell" data-role=${role}>
    <header class="top">
      <a class="brand" href="#/sources">observd</a>
      <nav aria-label="views">
        ${NAV.map(([name, label]) => html`<a href=${`#/${name}`} class=${active === name ? 'active' : ''} aria-current=${active === name ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <span class="whoami">
        <span class=${`role ${role}`} data-testid="role">${role === 'admin' ? (getToken() ? 'admin' : 'admin (loopback, no token)') : 'read-only'}</span>
        ${getToken() ? html`<button type="button" class="link" onClick=${signOut}>Sign out</button>` : null}
      </span>
    </header>
    <main id="view">${view ? html`<${view} key=${route.name + (route.id || '')} ...${props} />` : html`<p>Unknown view. <a href="#/sources">Sources</a></p>`}</main>
  </div>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
