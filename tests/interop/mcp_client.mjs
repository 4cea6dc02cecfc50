// Interop: the official TypeScript MCP SDK (@modelcontextprotocol/sdk) against Hangar's MCP endpoint.
//
// Client + StreamableHTTPClientTransport with an OAuthClientProvider kept in memory. The SDK does
// everything itself: 401 -> protected-resource metadata -> AS metadata -> dynamic client registration
// -> authorization URL (PKCE S256 + resource). Only the browser is simulated: redirectToAuthorization()
// POSTs the consent to that exact URL with the admin's Coder-Session-Token header (spec 03 §5.3) and
// reads `code` from the 302. Then finishAuth(code), reconnect, tools/list, tools/call, refresh via
// the SDK's auth(), and the SDK's own refresh-on-401.
//
// Env: HANGAR_URL (loopback). Run from a directory whose node_modules has the SDK (see mcp_typescript.sh).
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const BASE = (process.env.HANGAR_URL ?? '').replace(/\/+$/, '');
const ORIGIN = new URL(BASE).origin;
const MCP_URL = new URL(BASE + '/api/experimental/mcp/http');
const REDIRECT = 'http://127.0.0.1:8765/callback';
const TIMEOUT_MS = 10_000;
const ADMIN = { email: 'admin@example.com', username: 'admin', password: 'SomeSecurePassword!' };
const TOOL = 'coder_get_authenticated_user';

class CheckFailed extends Error {}

// Whole-run watchdog (the .sh also wraps us in `timeout 120`).
setTimeout(() => {
  console.error('FAIL: mcp_client.mjs did not finish within 100 s');
  process.exit(1);
}, 100_000).unref();

function step(msg) {
  console.log(`-- ${msg}`);
}
function check(cond, what, detail) {
  if (!cond) throw new CheckFailed(detail === undefined ? what : `${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
  console.log(`   ok: ${what}`);
}

// Every request, the SDK's included, goes through here: loopback origin only, bounded, traced.
const trace = [];
async function guardedFetch(input, init = {}) {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.origin !== ORIGIN) throw new CheckFailed(`refusing to contact ${url.href}: only ${ORIGIN} is allowed`);
  const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS);
  const method = init.method ?? 'GET';
  const headers = new Headers(init.headers);
  let detail = '';
  if (init.body instanceof URLSearchParams) {
    detail = ' form{' + [...init.body.keys()].join(',') + '}';
    for (const k of ['grant_type', 'resource', 'redirect_uri', 'scope']) {
      if (init.body.has(k)) detail += ` ${k}=${init.body.get(k)}`;
    }
  } else if (typeof init.body === 'string') {
    try {
      const j = JSON.parse(init.body);
      detail = j.method ? ` jsonrpc ${j.method}` : ' json' + JSON.stringify(j);
    } catch {
      detail = ' body';
    }
  }
  const authz = headers.get('authorization');
  if (authz) detail += ` auth=${authz.split(' ')[0]}`;
  if (headers.get('coder-session-token')) detail += ' Coder-Session-Token';
  const res = await fetch(input, { ...init, signal });
  trace.push(`${method} ${url.pathname}${url.search ? '?' + [...url.searchParams.keys()].join('&') : ''}${detail} -> ${res.status}`);
  return res;
}

async function api(method, path, { token, json } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers['Coder-Session-Token'] = token;
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  const res = await guardedFetch(BASE + path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), redirect: 'manual' });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body, headers: res.headers };
}

class InMemoryOAuthProvider {
  constructor(adminToken) {
    this.adminToken = adminToken;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._state = undefined;
    this.pendingCode = undefined;
    this.authorizations = 0;
    this.lastAuthorizationUrl = undefined;
  }
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return {
      client_name: 'hangar-interop-typescript',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this._state = randomBytes(16).toString('hex');
    return this._state;
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(info) {
    this._clientInformation = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }
  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }
  invalidateCredentials(scope) {
    console.log(`   (SDK invalidated credentials: ${scope})`);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }
  // The "browser": the user is logged in and clicks Allow. Header-authenticated POST, no redirects followed.
  async redirectToAuthorization(authorizationUrl) {
    this.authorizations += 1;
    this.lastAuthorizationUrl = authorizationUrl;
    const url = new URL(authorizationUrl);
    step(`SDK asks to open ${url.origin}${url.pathname} (${[...url.searchParams.keys()].join(', ')})`);
    check(url.origin === ORIGIN && url.pathname === '/oauth2/authorize', 'authorization URL is A/oauth2/authorize', url.href);
    const p = url.searchParams;
    check(p.get('response_type') === 'code', 'response_type=code');
    check(p.get('code_challenge_method') === 'S256' && (p.get('code_challenge') ?? '').length >= 43, 'PKCE S256 challenge');
    check(p.get('redirect_uri') === REDIRECT, 'redirect_uri is the registered one', p.get('redirect_uri'));
    check(p.get('resource') === MCP_URL.href, 'resource is the MCP URL from the PRM', p.get('resource'));
    check(p.get('state') === this._state, 'state from provider.state()', p.get('state'));
    const res = await guardedFetch(url, { method: 'POST', headers: { 'Coder-Session-Token': this.adminToken }, redirect: 'manual' });
    const text = await res.text();
    check(res.status === 302, 'consent POST -> 302', `${res.status} ${text.slice(0, 300)}`);
    const location = new URL(res.headers.get('location') ?? '', BASE);
    check(location.href.startsWith(REDIRECT), 'redirect to the callback', location.href);
    check(!location.searchParams.has('error'), 'no error in the redirect', location.href);
    check(location.searchParams.get('state') === this._state, 'state round-trips');
    check(location.searchParams.get('iss') === BASE, 'RFC 9207 iss = issuer', location.searchParams.get('iss'));
    this.pendingCode = location.searchParams.get('code');
    check(!!this.pendingCode, 'code in the redirect');
  }
}

async function rawMcp(accessToken, method, id = 1) {
  const res = await guardedFetch(MCP_URL, {
    method: 'POST',
    headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params: {} }),
    redirect: 'manual',
  });
  await res.text();
  return res;
}

async function callWhoAmI(client, what) {
  const result = await client.callTool({ name: TOOL, arguments: {} });
  check(!result.isError, `${what}: tools/call ${TOOL} succeeded`, result);
  const text = result.content?.find((c) => c.type === 'text')?.text;
  check(typeof text === 'string', `${what}: result has a text item`, result);
  const user = JSON.parse(text);
  check(user.username === ADMIN.username, `${what}: result is the admin user`, user.username);
}

async function main() {
  step('create the first user and log in');
  let r = await api('POST', '/api/v2/users/first', { json: ADMIN });
  check(r.status === 201, 'POST /api/v2/users/first -> 201', `${r.status} ${JSON.stringify(r.body)}`);
  r = await api('POST', '/api/v2/users/login', { json: { email: ADMIN.email, password: ADMIN.password } });
  check(r.status === 201 || r.status === 200, 'POST /api/v2/users/login', `${r.status} ${JSON.stringify(r.body)}`);
  const adminToken = r.body.session_token;

  const provider = new InMemoryOAuthProvider(adminToken);
  const newClient = () => new Client({ name: 'hangar-interop-typescript', version: '1.0.0' }, { capabilities: {} });
  const newTransport = () => new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: guardedFetch });

  step('connect without a token: the SDK discovers, registers and asks for authorization');
  const t1 = newTransport();
  const c1 = newClient();
  try {
    await c1.connect(t1);
    throw new CheckFailed('connect succeeded without any token');
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    check(e instanceof UnauthorizedError, 'connect ends in UnauthorizedError (authorization pending)', `${e?.constructor?.name}: ${e?.message}`);
  } finally {
    await t1.close().catch(() => {});
  }
  const info = provider.clientInformation();
  check(!!info?.client_id, 'dynamic client registration stored a client_id', info);
  check(info.client_secret === undefined, 'public client (token_endpoint_auth_method none) got no secret', info);
  check(provider.authorizations === 1 && !!provider.pendingCode, 'one authorization, code captured');

  step('finishAuth(code): the SDK exchanges the code (PKCE verifier + resource)');
  const t2 = newTransport();
  await t2.finishAuth(provider.pendingCode);
  const first = provider.tokens();
  check(!!first?.access_token && !!first?.refresh_token, 'access and refresh tokens stored', first && Object.keys(first));
  check(String(first.token_type).toLowerCase() === 'bearer', 'token_type Bearer', first.token_type);

  step('reconnect with the token: initialize, tools/list, tools/call');
  const c2 = newClient();
  await c2.connect(t2);
  check(c2.getServerVersion()?.name === 'hangar', 'server name is hangar', c2.getServerVersion());
  const tools = await c2.listTools();
  const names = tools.tools.map((t) => t.name);
  check(names.includes(TOOL), `tools/list includes ${TOOL}`, names);
  await callWhoAmI(c2, 'first token');

  step("refresh through the SDK's auth() (refresh_token grant with resource)");
  const result = await auth(provider, { serverUrl: MCP_URL, fetchFn: guardedFetch });
  check(result === 'AUTHORIZED', 'auth() refreshed without a new authorization', result);
  check(provider.authorizations === 1, 'no second consent was needed', provider.authorizations);
  const second = provider.tokens();
  check(second.access_token !== first.access_token, 'new access token');
  check(second.refresh_token && second.refresh_token !== first.refresh_token, 'refresh token rotated');
  const old = await rawMcp(first.access_token, 'tools/list');
  check(old.status === 401, 'old access token on MCP -> 401', old.status);
  check((old.headers.get('www-authenticate') ?? '').includes('invalid_token'), 'old token challenge says invalid_token', old.headers.get('www-authenticate'));
  await callWhoAmI(c2, 'refreshed token');

  step('refresh on 401: the SDK meets a dead access token and refreshes by itself');
  provider.saveTokens({ ...provider.tokens(), access_token: first.access_token });
  await callWhoAmI(c2, 'after automatic refresh');
  const third = provider.tokens();
  check(third.access_token !== first.access_token && third.access_token !== second.access_token, 'SDK stored a fresh access token');
  check(provider.authorizations === 1, 'still no second consent', provider.authorizations);

  await c2.close();
  console.log('HTTP requests made, in order:');
  for (const line of trace) console.log('  ' + line);
  console.log('mcp_client.mjs: all checks passed');
}

try {
  await main();
  process.exit(0);
} catch (e) {
  console.error(`FAIL: ${e instanceof CheckFailed ? '' : (e?.constructor?.name ?? 'Error') + ': '}${e?.message ?? e}`);
  if (!(e instanceof CheckFailed) && e?.stack) console.error(e.stack);
  console.error('HTTP requests made, in order:');
  for (const line of trace) console.error('  ' + line);
  process.exit(1);
}
