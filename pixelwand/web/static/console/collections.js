import { html, useEffect, useState } from "/static/vendor/preact/htm-preact-standalone.module.js";
import { gql } from "./api.js";
import { has, ScopeNote } from "./scopes.js";

/** [collection, indented label] pairs in tree order, for <select>s. */
export function collectionOptions(collections) {
  const out = [];
  const children = groupByParent(collections);
  const walk = (parentId, depth) => {
    for (const c of children.get(parentId) || []) {
      out.push([c, `${"\u00a0\u00a0".repeat(depth)}${depth ? "└ " : ""}${c.name}`]);
      walk(c.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

function groupByParent(collections) {
  const ids = new Set(collections.map((c) => c.id));
  const children = new Map();
  for (const c of [...collections].sort((a, b) => a.name.localeCompare(b.name))) {
    const parent = c.parentId && ids.has(c.parentId) ? c.parentId : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(c);
  }
  return children;
}

function Tree({ children, parentId }) {
  const list = children.get(parentId) || [];
  if (!list.length) return null;
  // Nested lists of links (not an ARIA tree: every item is a plain link, reached with Tab).
  return html`<ul aria-label=${parentId ? null : "Collections"}>
    ${list.map((c) => html`<li key=${c.id}>
      <a href=${`#/library?collection=${c.id}`}><span class="swatch" style=${`background:${c.color}`} aria-hidden="true"></span>${c.name}</a>
      <${Tree} children=${children} parentId=${c.id} />
    </li>`)}
  </ul>`;
}

export function Collections({ viewer }) {
  const [collections, setCollections] = useState(null);
  const [form, setForm] = useState({ name: "", parentId: "", color: "#6366f1" });
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const load = () => gql(`{ collections { id name parentId color } }`).then((d) => setCollections(d.collections)).catch((e) => setError(e.message));
  useEffect(() => { if (has(viewer, "read")) load(); }, []);
  async function create(e) {
    e.preventDefault();
    setMessage(null);
    setError(null);
    try {
      const d = await gql(`mutation Create($input: CreateCollectionInput!) { createCollection(input: $input) { created collection { id name } } }`,
        { input: { name: form.name.trim(), parentId: form.parentId || null, color: form.color } });
      setMessage(d.createCollection.created ? `Created “${d.createCollection.collection.name}”.` : `“${d.createCollection.collection.name}” already exists.`);
      setForm({ ...form, name: "" });
      load();
    } catch (err) {
      setError(err.message);
    }
  }
  return html`
    <section aria-labelledby="tree-h">
      <h2 id="tree-h">All collections</h2>
      ${!has(viewer, "read") ? html`<${ScopeNote} viewer=${viewer} scope="read" what="Listing collections" />`
        : collections == null ? html`<p role="status">Loading…</p>`
        : collections.length ? html`<div class="tree"><${Tree} children=${groupByParent(collections)} parentId=${null} /></div>`
        : html`<p>No collections yet.</p>`}
    </section>
    <section aria-labelledby="new-h">
      <h2 id="new-h">New collection</h2>
      ${!has(viewer, "write") ? html`<${ScopeNote} viewer=${viewer} scope="write" what="Creating a collection" />` : html`<form class="stack narrow" onSubmit=${create}>
        <label for="c-name">Name</label>
        <input id="c-name" value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} required />
        <label for="c-parent">Parent</label>
        <select id="c-parent" value=${form.parentId} onChange=${(e) => setForm({ ...form, parentId: e.target.value })}>
          <option value="">None (top level)</option>
          ${collectionOptions(collections || []).map(([c, label]) => html`<option value=${c.id}>${label}</option>`)}
        </select>
        <label for="c-color">Colour</label>
        <input id="c-color" type="color" value=${form.color} onInput=${(e) => setForm({ ...form, color: e.target.value })} />
        <button type="submit">Create collection</button>
      </form>`}
      ${message && html`<p role="status" class="ok">${message}</p>`}
      ${error && html`<p role="alert" class="error">${error}</p>`}
    </section>`;
}
