import { html, useEffect, useRef, useState } from "/static/vendor/preact/htm-preact-standalone.module.js";
import { ApiError, formatBytes, gql, request, serverCapabilities, splitTags } from "./api.js";
import { collectionOptions } from "./collections.js";
import { has, ScopeNote } from "./scopes.js";

// One request a page, thumbnails included: the server refuses a query costing more than
// PIXELWAND_GRAPHQL_MAX_COST (default 50,000; a render counts 4,000), so a page holds 12
// (docs/hardening.md, "GraphQL cost"). A server with a lower limit answers
// QUERY_TOO_COMPLEX: the page is then listed alone and its thumbnails fetched in halves.
const PAGE_SIZE = 12;
const THUMB = "maxWidth: 320, maxHeight: 320";
const FIELDS = "id name originalName mediaType mimeType size tags collectionId width height uploadedAt";
const TOO_COMPLEX = "QUERY_TOO_COMPLEX";
// A preset's settings that an export's config takes: all of them, so a ZIP "with a preset"
// is that preset (gravity, perceptual target and AUTO's candidates included).
const PRESET_CONFIG = ["format", "quality", "maxWidth", "maxHeight", "preserveAspect", "gravity", "perceptual", "formats"];
const PRESET_FIELDS = `name ${PRESET_CONFIG.join(" ")}`;
const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])";

function libraryQuery(caps) {
  const thumb = caps.rendition ? `thumb: rendition(${THUMB}, format: ${caps.formatLiteral}) { url }` : "";
  return `query Library($q: String, $type: MediaType, $tags: [String!], $collectionId: ID, $page: Int!, $pageSize: Int!) {
    assets(q: $q, type: $type, tags: $tags, collectionId: $collectionId, page: $page, pageSize: $pageSize) {
      page totalPages total items { ${FIELDS} ${thumb} }
    }
  }`;
}

/** {assetId: url} for `items`, as few requests as the server's cost limit allows: all in one
 * aliased query, split in halves while the server answers QUERY_TOO_COMPLEX. */
async function thumbnailsInChunks(items, aliasFor) {
  const out = {};
  const fetchChunk = async (chunk) => {
    if (!chunk.length) return;
    try {
      const body = await request(`{ ${chunk.map((a, i) => `t${i}: ${aliasFor(a)}`).join("\n")} }`);
      for (const v of Object.values(body.data || {})) {
        const url = v && (v.url || (v.thumb && v.thumb.url));
        if (url) out[v.assetId] = url;
      }
    } catch (err) {
      if (err.code !== TOO_COMPLEX || chunk.length === 1) return;
      const half = Math.ceil(chunk.length / 2);
      await fetchChunk(chunk.slice(0, half));
      await fetchChunk(chunk.slice(half));
    }
  };
  await fetchChunk(items);
  return out;
}

// Asset.rendition is nullable: an item that cannot be rendered (a corrupt file) is null
// with its error, and the other thumbnails stand.
const renditionAlias = (caps) => (a) =>
  `asset(id: ${JSON.stringify(a.id)}) { assetId: id thumb: rendition(${THUMB}, format: ${caps.formatLiteral}) { url } }`;

async function thumbnails(items, caps) {
  if (caps.rendition) return thumbnailsInChunks(items, renditionAlias(caps));
  // Without Asset.rendition (older servers): aliased exportUrl, images only (exportUrl is a
  // non-null root field: one failing alias would null the whole answer).
  return thumbnailsInChunks(items.filter((a) => a.mediaType === "IMAGE"), (a) =>
    `exportUrl(assetId: ${JSON.stringify(a.id)}, format: "WEBP", ${THUMB}) { assetId url }`);
}

export function Library({ params, viewer }) {
  const [filters, setFiltersState] = useState({ q: "", type: "", tags: "", collectionId: params.get("collection") || "" });
  const [page, setPage] = useState(1);
  // New filters start again at page 1 (in the same render, so one request, not two); the
  // same filters again (a search typed and erased, the URL's collection unchanged) keep
  // the page.
  const current = useRef(filters);
  const setFilters = (next) => {
    const value = typeof next === "function" ? next(current.current) : next;
    if (value === current.current) return;
    current.current = value;
    setPage(1);
    setFiltersState(value);
  };
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [selected, setSelected] = useState(new Set());
  const [openId, setOpenId] = useState(null);
  const [meta, setMeta] = useState({ collections: [], presets: [] });
  const [reload, setReload] = useState(0);
  const [qInput, setQInput] = useState("");
  const seq = useRef(0);

  useEffect(() => {
    gql(`{ collections { id name parentId } exportPresets { ${PRESET_FIELDS} } }`)
      .then((d) => setMeta({ collections: d.collections, presets: d.exportPresets }))
      .catch(() => {});
  }, []);
  useEffect(() => {
    const c = params.get("collection") || "";
    setFilters((f) => (f.collectionId === c ? f : { ...f, collectionId: c }));
  }, [params.toString()]);
  // Search as one types, a moment after the last key.
  useEffect(() => {
    const t = setTimeout(() => setFilters((f) => (f.q === qInput ? f : { ...f, q: qInput })), 300);
    return () => clearTimeout(t);
  }, [qInput]);

  useEffect(() => {
    const mine = ++seq.current;
    setLoading(true);
    (async () => {
      try {
        const caps = await serverCapabilities();
        const vars = {
          q: filters.q || null,
          type: filters.type || null,
          tags: filters.tags ? splitTags(filters.tags) : null,
          collectionId: filters.collectionId || null,
          page,
          pageSize: PAGE_SIZE,
        };
        let body;
        let listed = false;
        try {
          body = await request(libraryQuery(caps), vars);
        } catch (err) {
          // Over the server's cost limit with the thumbnails: the page alone, then those.
          if (!caps.rendition || err.code !== TOO_COMPLEX) throw err;
          listed = true;
          body = await request(libraryQuery({ rendition: false }), vars);
        }
        const assets = body.data.assets;
        let thumbs = {};
        if (caps.rendition && !listed) {
          for (const a of assets.items) if (a.thumb) thumbs[a.id] = a.thumb.url;
        } else {
          thumbs = await thumbnails(assets.items, caps);
        }
        if (mine !== seq.current) return;
        // Past the last page (its last asset deleted): the last page there is instead.
        if (page > 1 && page > assets.totalPages) {
          setPage(Math.max(1, assets.totalPages));
          return;
        }
        setResult({ ...assets, thumbs });
        setError(null);
      } catch (err) {
        if (mine === seq.current) setError(err.message);
      } finally {
        if (mine === seq.current) setLoading(false);
      }
    })();
  }, [filters, page, reload]);

  const set = (name) => (e) => setFilters({ ...filters, [name]: e.target.value });
  function toggle(id) {
    const next = new Set(selected);
    next.has(id) ? next.delete(id) : next.add(id);
    setSelected(next);
  }
  // An edit lists the page again; a deleted asset also leaves the selection.
  function changed(deletedId) {
    if (deletedId && selected.has(deletedId)) {
      const next = new Set(selected);
      next.delete(deletedId);
      setSelected(next);
    }
    setReload((n) => n + 1);
  }
  const items = result ? result.items : [];

  return html`
    <form class="filters" role="search" onSubmit=${(e) => { e.preventDefault(); setFilters({ ...filters, q: qInput }); }}>
      <div class="field"><label for="f-q">Search</label>
        <input id="f-q" type="search" value=${qInput} onInput=${(e) => setQInput(e.target.value)} placeholder="name contains…" /></div>
      <div class="field"><label for="f-type">Type</label>
        <select id="f-type" value=${filters.type} onChange=${set("type")}>
          <option value="">All</option><option value="IMAGE">Images</option><option value="VIDEO">Videos</option>
        </select></div>
      <div class="field"><label for="f-tags">Tags</label>
        <input id="f-tags" value=${filters.tags} onChange=${set("tags")} placeholder="a, b" /></div>
      <div class="field"><label for="f-collection">Collection</label>
        <select id="f-collection" value=${filters.collectionId} onChange=${set("collectionId")}>
          <option value="">Any</option>
          ${collectionOptions(meta.collections).map(([c, label]) => html`<option value=${c.id}>${label}</option>`)}
        </select></div>
    </form>
    <${ExportBar} selected=${selected} presets=${meta.presets} clear=${() => setSelected(new Set())} />
    <p role="status" class="count">${loading ? "Loading…" : result ? `${result.total} asset${result.total === 1 ? "" : "s"}, newest first` : ""}</p>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${result && !items.length && !loading && html`<p>No assets here yet. <a href="#/upload">Upload some</a>.</p>`}
    <ul class="grid" aria-label="Assets">
      ${items.map((a) => html`
        <li class=${"tile" + (selected.has(a.id) ? " selected" : "")} key=${a.id}>
          <button type="button" class="thumb" onClick=${() => setOpenId(a.id)} aria-label=${`Open ${a.name}`}>
            ${result.thumbs[a.id]
              ? html`<img src=${result.thumbs[a.id]} alt="" loading="lazy" />`
              : html`<span class="placeholder" data-kind=${a.mediaType} aria-hidden="true"></span>`}
          </button>
          <div class="tile-foot">
            <input type="checkbox" id=${`sel-${a.id}`} checked=${selected.has(a.id)} onChange=${() => toggle(a.id)} />
            <label for=${`sel-${a.id}`} class="name" title=${a.name}>${a.name}</label>
          </div>
        </li>`)}
    </ul>
    ${result && result.totalPages > 1 && html`
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled=${page <= 1} onClick=${() => setPage(page - 1)}>Previous</button>
        <span>Page ${result.page} of ${result.totalPages}</span>
        <button type="button" disabled=${page >= result.totalPages} onClick=${() => setPage(page + 1)}>Next</button>
      </nav>`}
    ${openId && html`<${Detail} id=${openId} viewer=${viewer} collections=${meta.collections} presets=${meta.presets}
        onClose=${() => setOpenId(null)} onChanged=${changed} />`}
  `;
}

function ExportBar({ selected, presets, clear }) {
  const [preset, setPreset] = useState("");
  const [status, setStatus] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!selected.size) return html`<p class="hint">Tick assets to download them as a ZIP.</p>`;
  async function download() {
    setBusy(true);
    setStatus(null);
    try {
      const p = presets.find((x) => x.name === preset);
      // A preset of format AUTO reports its fallback quality, which AUTO does not take.
      const keep = (k) => p[k] != null && !(k === "quality" && p.format === "AUTO");
      const config = p ? Object.fromEntries(PRESET_CONFIG.filter(keep).map((k) => [k, p[k]])) : null;
      const d = await gql(`mutation Export($input: CreateExportInput!) { createExport(input: $input) { url assetCount } }`,
        { input: { assetIds: [...selected], config } });
      const a = document.createElement("a");
      a.href = d.createExport.url;
      a.download = "pixelwand-export.zip";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setStatus(`Downloading ${d.createExport.assetCount} assets as a ZIP.`);
    } catch (err) {
      setStatus(err.message);
    } finally {
      setBusy(false);
    }
  }
  return html`
    <div class="exportbar" role="region" aria-label="Selection">
      <span>${selected.size} selected</span>
      <label for="zip-preset">Preset</label>
      <select id="zip-preset" value=${preset} onChange=${(e) => setPreset(e.target.value)}>
        <option value="">Original format</option>
        ${presets.map((p) => html`<option value=${p.name}>${p.name}</option>`)}
      </select>
      <button type="button" onClick=${download} disabled=${busy}>Download ZIP</button>
      <button type="button" class="secondary" onClick=${clear}>Clear selection</button>
      ${status && html`<span role="status">${status}</span>`}
    </div>`;
}

function Detail({ id, viewer, collections, presets, onClose, onChanged }) {
  const [asset, setAsset] = useState(null);
  const [preview, setPreview] = useState(null);
  const [form, setForm] = useState(null);
  const [message, setMessage] = useState(null);
  const [confirming, setConfirming] = useState(false);
  const [link, setLink] = useState(null);
  const [linkPreset, setLinkPreset] = useState("");
  const panel = useRef(null);
  const deleted = useRef(false);

  useEffect(() => {
    let live = true;
    setAsset(null);
    setPreview(null);
    setLink(null);
    setConfirming(false);
    gql(`query Asset($id: ID!) { asset(id: $id) { ${FIELDS} storageKey originalUrl(ttl: 3600) } }`, { id })
      .then((d) => {
        if (!live) return;
        setAsset(d.asset);
        setForm({ name: d.asset.name, tags: d.asset.tags.join(", "), collectionId: d.asset.collectionId || "" });
        // Images get a larger preview; videos their poster frame when the server renders one.
        return request(`query Preview($id: ID!) { exportUrl(assetId: $id, format: "JPEG", maxWidth: 800, maxHeight: 800) { url } }`, { id })
          .then((b) => live && setPreview(b.data.exportUrl.url))
          .catch(() => {});
      })
      .catch((err) => live && setMessage(err.message));
    return () => { live = false; };
  }, [id]);
  useEffect(() => {
    // Focus moves into the panel, and back to what opened it when it closes.
    const opener = document.activeElement;
    if (panel.current) panel.current.focus();
    const onKey = (e) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      // Back to the tile that opened the panel; when that asset was deleted (its tile goes
      // with the next listing), to the page's heading.
      const target = opener && opener.isConnected && !deleted.current ? opener : document.querySelector("main h1");
      if (target) target.focus();
    };
  }, []);

  // A modal dialog keeps Tab and Shift+Tab among its own controls.
  function trapTab(e) {
    if (e.key !== "Tab" || !panel.current) return;
    const focusable = [...panel.current.querySelectorAll(FOCUSABLE)].filter((el) => !el.disabled && el.offsetParent !== null);
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    const at = document.activeElement;
    if (e.shiftKey && (at === first || at === panel.current)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && at === last) {
      e.preventDefault();
      first.focus();
    }
  }

  async function save(e) {
    e.preventDefault();
    setMessage(null);
    try {
      const d = await gql(`mutation Update($id: ID!, $input: UpdateAssetInput!) { updateAsset(id: $id, input: $input) { ${FIELDS} } }`,
        { id, input: { name: form.name, tags: splitTags(form.tags), collectionId: form.collectionId || null } });
      setAsset({ ...asset, ...d.updateAsset });
      setMessage("Saved.");
      onChanged();
    } catch (err) {
      setMessage(err.message);
    }
  }
  async function remove() {
    try {
      await gql(`mutation Delete($id: ID!) { deleteAsset(id: $id) { deleted } }`, { id });
      deleted.current = true;
      onChanged(id);
      onClose();
    } catch (err) {
      setMessage(err.message);
      setConfirming(false);
    }
  }
  async function transformedLink() {
    setLink(null);
    try {
      const vars = linkPreset ? { id, preset: linkPreset } : { id, preset: null };
      const q = linkPreset
        ? `query L($id: ID!, $preset: String) { exportUrl(assetId: $id, preset: $preset) { url format } }`
        : `query L($id: ID!) { exportUrl(assetId: $id, format: "JPEG") { url format } }`;
      const d = await gql(q, vars);
      setLink(d.exportUrl);
    } catch (err) {
      setLink({ error: err.message });
    }
  }

  return html`
    <div class="backdrop" onClick=${onClose}></div>
    <div class="detail" role="dialog" aria-modal="true" aria-labelledby="detail-title" tabindex="-1" ref=${panel} onKeyDown=${trapTab}>
      <div class="detail-head">
        <h2 id="detail-title">${asset ? asset.name : "Asset"}</h2>
        <button type="button" class="secondary" onClick=${onClose} aria-label="Close details">✕</button>
      </div>
      ${!asset && !message && html`<p role="status">Loading…</p>`}
      ${asset && html`
        ${preview ? html`<img class="preview" src=${preview} alt=${`Preview of ${asset.name}`} />`
          : html`<div class="preview placeholder">${asset.mediaType}</div>`}
        <dl class="facts">
          <dt>Original name</dt><dd>${asset.originalName}</dd>
          <dt>Type</dt><dd>${asset.mediaType} (${asset.mimeType})</dd>
          <dt>Size</dt><dd>${formatBytes(asset.size)}</dd>
          ${asset.width && html`<dt>Dimensions</dt><dd>${asset.width} × ${asset.height}</dd>`}
          <dt>Uploaded</dt><dd>${new Date(asset.uploadedAt).toLocaleString()}</dd>
          <dt>Id</dt><dd><code>${asset.id}</code></dd>
        </dl>
        ${has(viewer, "write") ? html`
        <form onSubmit=${save} class="stack">
          <label for="d-name">Name</label>
          <input id="d-name" value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} required />
          <label for="d-tags">Tags (comma-separated)</label>
          <input id="d-tags" value=${form.tags} onInput=${(e) => setForm({ ...form, tags: e.target.value })} />
          <label for="d-collection">Collection</label>
          <select id="d-collection" value=${form.collectionId} onChange=${(e) => setForm({ ...form, collectionId: e.target.value })}>
            <option value="">None</option>
            ${collectionOptions(collections).map(([c, label]) => html`<option value=${c.id}>${label}</option>`)}
          </select>
          <button type="submit">Save</button>
        </form>
        ` : html`<${ScopeNote} viewer=${viewer} scope="write" what="Renaming, tagging, filing and deleting" />`}
        <h3>Download</h3>
        <p><a href=${asset.originalUrl} download=${asset.originalName}>Original file</a></p>
        ${asset.mediaType === "IMAGE" && html`
          <div class="row">
            <label for="d-preset">Transformed with</label>
            <select id="d-preset" value=${linkPreset} onChange=${(e) => setLinkPreset(e.target.value)}>
              <option value="">JPEG, full size</option>
              ${presets.map((p) => html`<option value=${p.name}>${p.name}</option>`)}
            </select>
            <button type="button" class="secondary" onClick=${transformedLink}>Get link</button>
          </div>
          ${link && (link.error ? html`<p class="error" role="alert">${link.error}</p>`
            : html`<p><a href=${link.url} download>Transformed file (${link.format})</a></p>`)}`}
        ${has(viewer, "write") && html`
        <h3>Delete</h3>
        ${confirming
          ? html`<div class="confirm" role="alertdialog" aria-labelledby="confirm-text">
              <p id="confirm-text">Delete “${asset.name}”? This cannot be undone.</p>
              <button type="button" class="danger" onClick=${remove}>Yes, delete</button>
              <button type="button" class="secondary" onClick=${() => setConfirming(false)}>Cancel</button>
            </div>`
          : html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Delete asset…</button>`}
        `}
      `}
      ${message && html`<p role="status" class=${message === "Saved." ? "ok" : "error"}>${message}</p>`}
    </div>`;
}

export { ApiError };
