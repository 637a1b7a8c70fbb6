// The search page: plain JavaScript, no build step, no network but the
// server's own API (docs/serve.md). The URL holds the query (?q=TEXT or
// ?id=IMAGE_ID, and k) so a link opens the same results; uploads are not in
// the URL (they never leave the page but to the server).
"use strict";
(() => {
  const $ = (sel, el = document) => el.querySelector(sel);
  const form = $("#search"), q = $("#q"), k = $("#k"), file = $("#file");
  const statusEl = $("#status"), columns = $("#columns"), drop = $("#drop");
  const queryImage = $("#query-image");
  const colTemplate = $("#column"), resultTemplate = $("#result");

  // A server started with --token needs it on every API call; the page asks
  // once (on a 401) and keeps it for the tab's session only.
  let token = sessionStorage.getItem("clipline.token") || "";
  let seq = 0; // answers to superseded searches are dropped
  let info = null; // GET /v1/info, for the column headings
  let queryURL = ""; // object URL of the query image shown

  const topK = () => Number(k.value) || 20;

  function authHeaders(h = {}) {
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  class HTTPError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function call(url, init = {}) {
    init.headers = authHeaders(init.headers);
    const res = await fetch(url, init);
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      throw new HTTPError(res.status, (body && body.error) || `${res.status} ${res.statusText}`);
    }
    return body;
  }

  // ---- URL state ------------------------------------------------------------
  function stateFromURL() {
    const p = new URLSearchParams(location.search);
    const n = Number(p.get("k"));
    return { q: p.get("q") || "", id: p.get("id") || "", k: n >= 1 ? Math.min(n, 1000) : 0 };
  }

  function setURL(state, push) {
    const p = new URLSearchParams();
    if (state.q) p.set("q", state.q);
    if (state.id) p.set("id", state.id);
    p.set("k", String(topK()));
    const url = "?" + p.toString();
    if (url === location.search) return;
    if (push) history.pushState(state, "", url);
    else history.replaceState(state, "", url);
  }

  function setK(n) {
    if (!n) return;
    const v = String(n);
    if (![...k.options].some(o => o.value === v)) {
      k.add(new Option(v, v));
    }
    k.value = v;
  }

  // ---- searching ------------------------------------------------------------
  function searchText(text, push = true) {
    text = text.trim();
    if (!text) return;
    q.value = text;
    setURL({ q: text }, push);
    document.title = `${text} · clipline search`;
    showQueryImage(null);
    run(`“${text}”`, () => call("v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, top_k: topK() }),
    }), text);
  }

  function searchSimilar(imageId, push = true) {
    setURL({ id: imageId }, push);
    document.title = `like ${imageId} · clipline search`;
    q.value = "";
    showQueryImage(thumbURL(imageId));
    run(`images like ${imageId}`, () => call("v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image_id: imageId, top_k: topK() }),
    }));
  }

  function searchImage(blob) {
    if (!blob || !blob.type.startsWith("image/")) {
      setStatus(`That is not an image (${blob ? blob.type || "unknown type" : "no file"}).`, true);
      return;
    }
    setURL({}, true);
    document.title = "image search · clipline search";
    q.value = "";
    showQueryImage(blob);
    const body = new FormData();
    body.append("file", blob, blob.name || "pasted-image");
    run(`the image ${blob.name || "pasted"}`, () =>
      call(`search/image?top_k=${topK()}`, { method: "POST", body }));
  }

  // query is the text searched for, if any: its caption is marked in the cards.
  async function run(what, request, query = "") {
    const mine = ++seq;
    columns.setAttribute("aria-busy", "true");
    setStatus(`Searching ${what}…`);
    const started = performance.now();
    try {
      const resp = await request();
      if (mine !== seq) return;
      render(resp, what, performance.now() - started, query);
    } catch (err) {
      if (mine !== seq) return;
      if (err.status === 401) askToken(what, request, query);
      else setStatus(`Search failed: ${err.message}`, true);
    } finally {
      if (mine === seq) columns.removeAttribute("aria-busy");
    }
  }

  function askToken(what, request, query) {
    const t = prompt("This server needs an access token (serve --token):", "");
    if (!t) {
      setStatus("Search failed: the server needs an access token.", true);
      return;
    }
    token = t.trim();
    sessionStorage.setItem("clipline.token", token);
    if (!info) loadInfo();
    run(what, request, query);
  }

  // The server's models and index, named in the headings and the hint line;
  // the page works without them (an older server, or a token not yet given).
  async function loadInfo() {
    try {
      info = await call("v1/info");
    } catch (_) {
      return;
    }
    const idx = info.index || {};
    const model = (info.model || {}).source;
    $("#info").textContent = `${idx.count} ${idx.kind || "images"} indexed` +
      (model ? `, model ${model}` : "") +
      (info.compare ? `; compared with ${(info.compare.model || {}).source}` : "") + "." +
      reportText(info.report);
  }

  // The fine-tune's report (index --report), when the bundle has one: text to
  // image Recall@1 before and after, as the default run's table has it.
  function reportText(r) {
    const r1 = side => r && r[side] && r[side].t2i && r[side].t2i.r1;
    const pct = x => `${(100 * x).toFixed(1)}%`;
    if (typeof r1("zero_shot") !== "number" || typeof r1("fine_tuned") !== "number") return "";
    return ` Test split text→image R@1: ${pct(r1("zero_shot"))} zero-shot, ${pct(r1("fine_tuned"))} fine-tuned.`;
  }

  // ---- rendering ------------------------------------------------------------
  function setStatus(text, isError = false) {
    statusEl.textContent = text;
    statusEl.classList.toggle("error", isError);
  }

  function thumbURL(id) {
    return `v1/images/${encodeURIComponent(id)}?w=256`;
  }

  // With a token the images need the header too, which <img src> cannot send.
  function loadThumb(img, id) {
    const url = thumbURL(id);
    if (!token) {
      img.src = url;
      return;
    }
    fetch(url, { headers: authHeaders() })
      .then(r => r.ok ? r.blob() : Promise.reject(new Error(r.statusText)))
      .then(b => {
        img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
        img.src = URL.createObjectURL(b);
      })
      .catch(() => { img.alt = `${img.alt} (not loaded)`; });
  }

  function showQueryImage(src) {
    if (queryURL) URL.revokeObjectURL(queryURL);
    queryURL = "";
    const img = $("img", queryImage);
    if (!src) {
      queryImage.hidden = true;
      img.removeAttribute("src");
      return;
    }
    if (typeof src === "string") {
      img.src = src;
    } else {
      queryURL = URL.createObjectURL(src);
      img.src = queryURL;
    }
    queryImage.hidden = false;
  }

  function timingText(t) {
    if (!t || typeof t !== "object") return "";
    const parts = Object.entries(t)
      .filter(([, v]) => typeof v === "number")
      .map(([name, v]) => `${name.replace(/_ms$/, "")} ${v.toFixed(1)} ms`);
    return parts.length ? ` (server: ${parts.join(", ")})` : "";
  }

  function render(resp, what, ms, query) {
    const results = (resp && resp.results) || [];
    const compare = resp && Array.isArray(resp.compare) ? resp.compare : null;
    const relevant = new Set((resp && resp.relevant) || []);
    const firsts = (resp && resp.first_relevant_rank) || {};
    columns.replaceChildren();
    columns.classList.toggle("compare", !!compare);
    // Zero-shot first, then the fine-tuned model: before and after, read left to right.
    if (compare) {
      addColumn("Zero-shot", info && info.compare && info.compare.model.source, compare, relevant, firsts.compare, query);
    }
    addColumn(compare ? "Fine-tuned" : "", info && info.model.source, results, relevant, firsts.results, query);
    const n = results.length === 1 ? "1 result" : `${results.length} results`;
    setStatus(`${n} for ${what} in ${Math.round(ms)} ms${timingText(resp && resp.timings)}.`);
    const first = $(".result", columns);
    if (first) first.tabIndex = 0;
  }

  function addColumn(title, model, results, relevant, firstRelevant, query) {
    const col = colTemplate.content.firstElementChild.cloneNode(true);
    const h = $("h2", col), fr = $(".first-relevant", col), grid = $(".grid", col);
    if (title) {
      h.textContent = title;
      if (model) {
        const m = document.createElement("span");
        m.className = "model";
        m.textContent = model;
        h.append(" ", m);
      }
    } else {
      h.remove();
    }
    grid.setAttribute("aria-label", title ? `${title} results` : "results");
    if (relevant.size) {
      const below = firstRelevant > results.length ? `, below the ${results.length} shown` : "";
      fr.textContent = firstRelevant
        ? `First relevant image at rank ${firstRelevant}${below} (${relevant.size} relevant).`
        : `No relevant image among the ranks searched (${relevant.size} relevant).`;
    } else {
      fr.remove();
    }
    for (const r of results) grid.append(card(r, relevant.has(r.image_id), query));
    columns.append(col);
  }

  function card(r, isRelevant, query) {
    const li = resultTemplate.content.firstElementChild.cloneNode(true);
    const captions = r.captions || [];
    li.dataset.imageId = r.image_id;
    li.classList.toggle("relevant", isRelevant);
    const score = typeof r.score === "number" ? r.score.toFixed(3) : "";
    li.setAttribute("aria-label",
      `rank ${r.rank}, ${r.image_id}, score ${score}${isRelevant ? ", relevant" : ""}: ${captions[0] || ""}`);
    const img = $(".thumb", li);
    img.alt = captions[0] || r.image_id;
    loadThumb(img, r.image_id);
    $(".rank", li).textContent = `#${r.rank}`;
    $(".score", li).textContent = score;
    const id = document.createElement("span");
    id.className = "image-id";
    id.textContent = r.image_id;
    $(".meta", li).insertBefore(id, $(".more", li));
    if (isRelevant) {
      const b = document.createElement("span");
      b.className = "badge";
      b.textContent = "relevant";
      $(".meta", li).insertBefore(b, $(".more", li));
    }
    $(".more", li).setAttribute("aria-label", `More images like ${r.image_id}`);
    const ul = $(".captions", li);
    for (const c of captions) {
      const item = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "caption";
      b.title = "Search this caption";
      b.textContent = c;
      if (c === query) b.classList.add("match");
      item.append(b);
      ul.append(item);
    }
    return li;
  }

  function clear() {
    seq++;
    q.value = "";
    columns.replaceChildren();
    columns.classList.remove("compare");
    columns.removeAttribute("aria-busy");
    showQueryImage(null);
    setStatus("");
    document.title = "clipline search";
    setURL({}, true);
    q.focus();
  }

  // ---- events ---------------------------------------------------------------
  form.addEventListener("submit", e => {
    e.preventDefault();
    searchText(q.value);
  });

  k.addEventListener("change", () => {
    const s = stateFromURL();
    if (s.q) searchText(s.q);
    else if (s.id) searchSimilar(s.id);
    else setURL({}, false);
  });

  file.addEventListener("change", () => {
    if (file.files.length) searchImage(file.files[0]);
    file.value = ""; // choosing the same file again searches again
  });

  columns.addEventListener("click", e => {
    const cap = e.target.closest("button.caption");
    if (cap) return searchText(cap.textContent);
    const more = e.target.closest("button.more");
    if (more) return searchSimilar(more.closest(".result").dataset.imageId);
  });

  columns.addEventListener("focusin", e => {
    const li = e.target.closest(".result");
    if (!li) return;
    for (const other of columns.querySelectorAll(".result[tabindex='0']")) other.tabIndex = -1;
    li.tabIndex = 0;
  });

  // Arrow keys move through the grid of the focused result's column: left
  // and right by one, up and down by a row (as many as fit side by side).
  function move(li, key) {
    const items = [...li.closest(".grid").children];
    const i = items.indexOf(li);
    const perRow = Math.max(1, items.filter(x => x.offsetTop === items[0].offsetTop).length);
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -perRow, ArrowDown: perRow }[key];
    let j = key === "Home" ? 0 : key === "End" ? items.length - 1 : i + step;
    if (j < 0 || j >= items.length) {
      // Left and right cross to the neighbouring column when there is one.
      const cols = [...columns.querySelectorAll(".grid")];
      const c = cols.indexOf(li.closest(".grid"));
      const other = cols[c + (key === "ArrowRight" ? 1 : key === "ArrowLeft" ? -1 : 0)];
      if (!other || other === li.closest(".grid")) return;
      const row = Math.floor(i / perRow);
      const target = [...other.children][Math.min(other.children.length - 1,
        key === "ArrowRight" ? row * perRow : row * perRow + perRow - 1)];
      if (target) target.focus();
      return;
    }
    items[j].focus();
  }

  document.addEventListener("keydown", e => {
    const t = e.target;
    const typing = t.matches && t.matches("input, textarea, select");
    if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      q.focus();
      q.select();
      return;
    }
    if (e.key === "Escape") {
      e.preventDefault();
      drop.hidden = true;
      clear();
      return;
    }
    if (t === q && e.key === "ArrowDown") {
      const first = $(".result", columns);
      if (first) { e.preventDefault(); first.focus(); }
      return;
    }
    const li = t.classList && t.classList.contains("result") ? t : null;
    if (!li) return;
    if (e.key === "Enter") {
      e.preventDefault();
      searchSimilar(li.dataset.imageId);
    } else if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"].includes(e.key)) {
      e.preventDefault();
      move(li, e.key);
    }
  });

  // Drag and drop anywhere on the page; the overlay says what a drop does.
  const hasFiles = e => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  document.addEventListener("dragover", e => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    drop.hidden = false;
  });
  document.addEventListener("dragleave", e => {
    if (!e.relatedTarget) drop.hidden = true;
  });
  document.addEventListener("drop", e => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    drop.hidden = true;
    searchImage(e.dataTransfer.files[0]);
  });

  // Pasting an image (a screenshot, a copied picture) searches by it; pasted
  // text goes where it was pasted as usual.
  document.addEventListener("paste", e => {
    const item = [...(e.clipboardData ? e.clipboardData.items : [])]
      .find(i => i.kind === "file" && i.type.startsWith("image/"));
    if (!item) return;
    e.preventDefault();
    searchImage(item.getAsFile());
  });

  window.addEventListener("popstate", start);

  function start() {
    const s = stateFromURL();
    setK(s.k);
    if (s.q) searchText(s.q, false);
    else if (s.id) searchSimilar(s.id, false);
    else {
      q.value = "";
      columns.replaceChildren();
      showQueryImage(null);
      setStatus("");
    }
  }

  loadInfo().then(start);
  if (!stateFromURL().q && !stateFromURL().id) q.focus();
})();
