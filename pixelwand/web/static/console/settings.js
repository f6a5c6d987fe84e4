import { html, useEffect, useRef, useState } from "/static/vendor/preact/htm-preact-standalone.module.js";
import { formatBytes, gql } from "./api.js";
import { ScopeNote } from "./scopes.js";

const SCOPES = ["read", "write", "admin"];

export function ApiKeys({ viewer }) {
  const admin = viewer.scopes.includes("admin");
  const [keys, setKeys] = useState(null);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState(new Set(["read"]));
  const [created, setCreated] = useState(null);
  const [copied, setCopied] = useState(false);
  const [revoking, setRevoking] = useState(null);
  const [error, setError] = useState(null);
  const secret = useRef(null);
  const load = () => gql(`{ apiKeys { id name prefix scopes createdAt revokedAt } }`).then((d) => setKeys(d.apiKeys)).catch((e) => setError(e.message));
  useEffect(() => { if (admin) load(); }, [admin]);
  useEffect(() => { if (created && secret.current) secret.current.focus(); }, [created]);
  if (!admin) return html`<${ScopeNote} viewer=${viewer} scope="admin" what="Managing API keys (list, create, revoke)" />`;
  function toggle(s) {
    const next = new Set(scopes);
    next.has(s) ? next.delete(s) : next.add(s);
    setScopes(next);
  }
  async function create(e) {
    e.preventDefault();
    setError(null);
    setCopied(false);
    try {
      const d = await gql(`mutation Create($scopes: [String!]!, $name: String!) { createApiKey(scopes: $scopes, name: $name) { key apiKey { id prefix } } }`,
        { scopes: SCOPES.filter((s) => scopes.has(s)), name: name.trim() });
      setCreated(d.createApiKey);
      setName("");
      load();
    } catch (err) {
      setError(err.message);
    }
  }
  // The secret goes; focus goes to the key list's heading (not lost to the page's body).
  function hide() {
    setCreated(null);
    const h = document.getElementById("keys-h");
    if (h) h.focus();
  }
  async function copy() {
    try {
      await navigator.clipboard.writeText(created.key);
    } catch (e) {
      secret.current.select();
      document.execCommand("copy");
    }
    setCopied(true);
  }
  async function revoke(id) {
    setError(null);
    try {
      await gql(`mutation Revoke($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`, { id });
      setRevoking(null);
      load();
    } catch (err) {
      setError(err.message);
    }
  }
  return html`
    ${created && html`
      <section class="secret" aria-labelledby="secret-h" role="region">
        <h2 id="secret-h">New key “${created.apiKey.prefix}…”</h2>
        <p class="warning"><strong>Copy it now: it is shown only this once.</strong> Pixel Wand keeps only its hash; if you lose it, revoke it and create another.</p>
        <label for="new-key">API key</label>
        <div class="row">
          <input id="new-key" ref=${secret} readonly value=${created.key} onFocus=${(e) => e.target.select()} />
          <button type="button" onClick=${copy}>Copy</button>
          <button type="button" class="secondary" onClick=${hide}>Done, hide it</button>
        </div>
        ${copied && html`<p role="status" class="ok">Copied to the clipboard.</p>`}
      </section>`}
    <section aria-labelledby="keys-h">
      <h2 id="keys-h" tabindex="-1">${viewer.organization ? `Keys of ${viewer.organization.name}` : "Keys of this organization"}</h2>
      ${keys == null ? html`<p role="status">Loading…</p>` : html`
        <div class="table-wrap"><table>
          <thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${keys.map((k) => html`<tr key=${k.id}>
            <th scope="row">${k.name || "—"}</th><td><code>${k.prefix}…</code></td><td>${k.scopes.join(", ")}</td>
            <td>${new Date(k.createdAt).toLocaleDateString()}</td>
            <td>${k.revokedAt ? "revoked" : "active"}</td>
            <td>${!k.revokedAt && (revoking === k.id
              ? html`<span role="alertdialog" aria-label=${`Revoke ${k.name || k.prefix}?`}>Revoke? <button type="button" class="danger" onClick=${() => revoke(k.id)}>Yes, revoke</button>
                  <button type="button" class="secondary" onClick=${() => setRevoking(null)}>Cancel</button></span>`
              : html`<button type="button" class="secondary" onClick=${() => setRevoking(k.id)} aria-label=${`Revoke ${k.name || k.prefix}`}>Revoke</button>`)}</td>
          </tr>`)}</tbody>
        </table></div>`}
    </section>
    <section aria-labelledby="newkey-h">
      <h2 id="newkey-h">Create a key</h2>
      <form class="stack narrow" onSubmit=${create}>
        <label for="k-name">Name</label>
        <input id="k-name" value=${name} onInput=${(e) => setName(e.target.value)} placeholder="e.g. website build" />
        <fieldset><legend>Scopes</legend>
          ${SCOPES.map((s) => html`<label class="check"><input type="checkbox" checked=${scopes.has(s)} onChange=${() => toggle(s)} /> ${s}</label>`)}
        </fieldset>
        <button type="submit" disabled=${!scopes.size}>Create key</button>
      </form>
    </section>
    ${error && html`<p role="alert" class="error">${error}</p>`}`;
}

export function Usage({ viewer, refresh }) {
  useEffect(() => { refresh(); }, []);
  const pct = viewer.storageQuota ? Math.min(100, (100 * viewer.storageUsed) / viewer.storageQuota) : 0;
  return html`
    <dl class="facts usage">
      <dt>Organization</dt><dd>${viewer.organization.name} <code>${viewer.organization.id}</code></dd>
      <dt>Plan</dt><dd>${viewer.plan}</dd>
      <dt>Rate limit</dt><dd>${viewer.rateLimitPerSecond} requests/second per key</dd>
      <dt>This key's scopes</dt><dd>${viewer.scopes.join(", ")}</dd>
      <dt>Storage</dt><dd>${formatBytes(viewer.storageUsed)} used of ${formatBytes(viewer.storageQuota)} (${pct.toFixed(pct < 1 ? 2 : 0)}%)</dd>
    </dl>
    <label for="quota">Storage used</label>
    <meter id="quota" min="0" max=${viewer.storageQuota} value=${viewer.storageUsed} high=${viewer.storageQuota * 0.9}>${pct.toFixed(0)}%</meter>`;
}
