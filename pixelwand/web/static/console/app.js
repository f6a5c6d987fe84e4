// Pixel Wand console: Preact + htm (one vendored ES module, no build step).
import { html, render, useEffect, useRef, useState } from "/static/vendor/preact/htm-preact-standalone.module.js";
import { ApiError, forgetCapabilities, keyProblem, session, SIGNED_OUT, whoAmI } from "./api.js";
import { Library } from "./library.js";
import { Upload } from "./upload.js";
import { Collections } from "./collections.js";
import { Presets } from "./presets.js";
import { ApiKeys, Usage } from "./settings.js";
import { has, ScopeNote } from "./scopes.js";

const ROUTES = [
  ["library", "Library"],
  ["upload", "Upload"],
  ["collections", "Collections"],
  ["presets", "Export presets"],
  ["settings/keys", "API keys"],
  ["settings/usage", "Usage"],
];

function currentRoute() {
  const hash = window.location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  const known = ROUTES.some(([r]) => r === path);
  return { path: known ? path : "library", params: new URLSearchParams(query) };
}

function SignIn({ onSignedIn, notice }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(notice ? `Signed out: ${notice}` : null);
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current && input.current.focus(), []);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const trimmed = key.trim();
    const problem = keyProblem(trimmed);
    if (problem) {
      setError(problem);
      setBusy(false);
      return;
    }
    try {
      const viewer = await whoAmI(trimmed);
      session.signIn(trimmed);
      onSignedIn(viewer);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }
  return html`
    <main id="main" class="signin">
      <h1>Pixel Wand</h1>
      <form onSubmit=${submit} class="card">
        <label for="api-key">API key</label>
        <input id="api-key" ref=${input} type="password" autocomplete="off" spellcheck="false"
          placeholder="ak_live_…" value=${key} onInput=${(e) => setKey(e.target.value)} required
          aria-describedby="key-help${error ? " key-error" : ""}" />
        <p id="key-help" class="hint">Kept in this browser tab only (sessionStorage) and sent as the
          <code>Authorization: Bearer</code> header; closing the tab or signing out forgets it.</p>
        ${error && html`<p id="key-error" class="error" role="alert">${error}</p>`}
        <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
      </form>
      <p class="links"><a href="/graphql">GraphiQL</a> · <a href="/api/v1/docs">REST API docs</a></p>
    </main>`;
}

function Shell({ viewer, onSignOut, refreshViewer, focusFirst }) {
  const [route, setRoute] = useState(currentRoute());
  const heading = useRef(null);
  const mounted = useRef(false);
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  // Moving to a page (or in from the sign-in form) puts focus on its heading; a reload
  // leaves focus where the browser starts it, so the skip link comes first.
  useEffect(() => {
    if (mounted.current || focusFirst) {
      const h = document.querySelector("main h1");
      if (h) h.focus();
    }
    mounted.current = true;
  }, [route.path]);
  const title = (ROUTES.find(([r]) => r === route.path) || ROUTES[0])[1];
  useEffect(() => { document.title = `${title} · Pixel Wand`; }, [title]);
  const views = {
    library: () => has(viewer, "read")
      ? html`<${Library} params=${route.params} viewer=${viewer} />`
      : html`<${ScopeNote} viewer=${viewer} scope="read" what="Browsing the library" />`,
    upload: () => has(viewer, "write")
      ? html`<${Upload} viewer=${viewer} onUploaded=${refreshViewer} />`
      : html`<${ScopeNote} viewer=${viewer} scope="write" what="Uploading" />`,
    collections: () => html`<${Collections} viewer=${viewer} />`,
    presets: () => html`<${Presets} viewer=${viewer} />`,
    "settings/keys": () => html`<${ApiKeys} viewer=${viewer} />`,
    "settings/usage": () => viewer.limited
      ? html`<${ScopeNote} viewer=${viewer} scope="read" what="Seeing the plan, rate limit and storage" />`
      : html`<${Usage} viewer=${viewer} refresh=${refreshViewer} />`,
  };
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById("main").focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">Pixel Wand</span>
      <span class="org" title="Organization">${viewer.limited ? `A key with the ${viewer.scopes.join(", ")} scope${viewer.scopes.length > 1 ? "s" : ""}` : `${viewer.organization.name} · ${viewer.plan}`}</span>
      <button type="button" class="secondary" onClick=${onSignOut}>Sign out</button>
    </header>
    <nav aria-label="Main">
      <ul>
        ${ROUTES.map(([r, label]) => html`<li><a href="#/${r}" aria-current=${r === route.path ? "page" : null}>${label}</a></li>`)}
        <li><a href="/graphql">GraphiQL</a></li>
        <li><a href="/api/v1/docs">API docs</a></li>
      </ul>
    </nav>
    <main id="main" tabindex="-1">
      <h1 tabindex="-1" ref=${heading}>${title}</h1>
      ${views[route.path]()}
    </main>`;
}

function App() {
  const [viewer, setViewer] = useState(null);
  const [checking, setChecking] = useState(Boolean(session.key()));
  const [signedInHere, setSignedInHere] = useState(false);
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    const refused = (e) => {
      setNotice(e.detail);
      signOut();
    };
    window.addEventListener(SIGNED_OUT, refused);
    return () => window.removeEventListener(SIGNED_OUT, refused);
  }, []);
  async function refreshViewer() {
    try {
      setViewer(await whoAmI());
    } catch (err) {
      // A refused key signs out through the SIGNED_OUT event (api.js).
    }
  }
  useEffect(() => {
    if (session.key()) refreshViewer().finally(() => setChecking(false));
  }, []);
  function signOut() {
    session.signOut();
    forgetCapabilities();
    setViewer(null);
    window.location.hash = "";
  }
  if (checking) return html`<p role="status">Loading…</p>`;
  if (!viewer) return html`<${SignIn} notice=${notice} onSignedIn=${(v) => { setSignedInHere(true); setNotice(null); setViewer(v); }} />`;
  return html`<${Shell} viewer=${viewer} onSignOut=${signOut} refreshViewer=${refreshViewer} focusFirst=${signedInHere} />`;
}

render(html`<${App} />`, document.getElementById("app"));
