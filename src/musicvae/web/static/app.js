// MusicVAE Studio: drum grids, Web Audio playback and the tools /api/info lists, talking to the
// /api routes. The tab bar is built from that list; each tool's panel is index.html's
// section.tool of the same data-tool, with one .run button that calls tools[name] below.
"use strict";

// Row labels come from /api/info (the converter's class table); until it answers, none.
const drumLabels = () => (state.info && state.info.drum_labels) || [];
const rows = () => drumLabels().length;
const TAP_ROW = 2; // taps are drawn as closed hi-hats; the server reduces them to one tap voice anyway

const state = {
  info: null,
  grooves: new Map(), // id -> groove {id, name, qpm, steps, hits, velocities, offsets, el, ...}
  slots: { a: null, b: null }, // interpolation endpoints (groove ids)
  selected: null, // groove id used by Groove, Drumify and Similar
  tool: "generate",
  nextId: 1,
};

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ---------------------------------------------------------------- server calls

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch("api/" + path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(errorText(data, res));
  return data;
}

function errorText(data, res) {
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail) && data.detail.length) {
    return data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return `${res.status} ${res.statusText}`;
}

async function uploadMidi(file) {
  const max = state.info ? state.info.max_upload_bytes : 1 << 20;
  if (file.size > max) throw new Error(`${file.name}: file is larger than ${max / (1 << 20)} MB`);
  const form = new FormData();
  form.append("file", file, file.name);
  const res = await fetch("api/midi", { method: "POST", body: form });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(errorText(data, res));
  return data;
}

function toast(msg, kind = "info") {
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.textContent = msg;
  $("#toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 3500);
}

// ---------------------------------------------------------------- grooves and grids

function wireGroove(g) {
  return { name: g.name, qpm: tempo(), hits: g.hits, velocities: g.velocities, offsets: g.offsets };
}

function addGroove(data, name) {
  const g = {
    id: state.nextId++, name: name || data.name || "groove", qpm: data.qpm || 120,
    steps: data.hits[0].length, hits: data.hits.map((r) => r.map(Number)),
    velocities: data.velocities.map((r) => r.slice()), offsets: data.offsets.map((r) => r.slice()),
    version: 0, midi: null,
  };
  state.grooves.set(g.id, g);
  return g;
}

function emptyGroove(steps, name) {
  const zeros = () => Array.from({ length: rows() }, () => new Array(steps).fill(0));
  return addGroove({ hits: zeros(), velocities: zeros(), offsets: zeros(), qpm: tempo() }, name);
}

function renderCard(g) {
  const card = document.createElement("div");
  card.className = "groove-card";
  card.dataset.id = g.id;
  card.innerHTML = `
    <div class="card-head">
      <span class="name" title="Select"></span>
      <button class="play" title="Play this groove">▶</button>
      <button class="to-a" title="Use as interpolation start">A</button>
      <button class="to-b" title="Use as interpolation end">B</button>
      <a class="dl" href="#" draggable="true" title="Download MIDI (or drag out)">⬇ MIDI</a>
    </div>
    <div class="grid-wrap"><div class="row-labels"></div><div class="grid"></div></div>`;
  $(".name", card).textContent = g.name;
  $(".row-labels", card).innerHTML = drumLabels().map((d) => `<div>${d}</div>`).join("");
  const grid = $(".grid", card);
  grid.style.setProperty("--steps", g.steps);
  const frag = document.createDocumentFragment();
  for (let s = 0; s < g.steps; s++) {
    for (let r = 0; r < rows(); r++) {
      const cell = document.createElement("div");
      cell.className = "cell" + (s % 16 === 15 ? " bar" : s % 4 === 3 ? " beat" : "")
        + (Math.floor(s / 4) % 2 ? " shade" : "");
      cell.dataset.row = r;
      cell.dataset.step = s;
      frag.append(cell);
    }
  }
  grid.append(frag);
  const head = document.createElement("div");
  head.className = "playhead";
  grid.append(head);
  g.el = card;
  g.cells = $$(".cell", grid);
  for (let s = 0; s < g.steps; s++) for (let r = 0; r < rows(); r++) paintCell(g, r, s);

  grid.addEventListener("click", (e) => {
    const cell = e.target.closest(".cell");
    if (cell) toggleCell(g, +cell.dataset.row, +cell.dataset.step);
  });
  $(".name", card).addEventListener("click", () => select(g.id));
  $(".play", card).addEventListener("click", () => { select(g.id); player.start([g.id]); });
  $(".to-a", card).addEventListener("click", () => setSlot("a", g.id));
  $(".to-b", card).addEventListener("click", () => setSlot("b", g.id));
  const dl = $(".dl", card);
  dl.addEventListener("click", (e) => { e.preventDefault(); downloadMidi(g); });
  dl.addEventListener("mouseenter", () => midiUrl(g).catch(() => {}));
  dl.addEventListener("dragstart", (e) => {
    // Chrome saves a DownloadURL drag as a file where it is dropped; it needs the blob ready now.
    if (g.midi && g.midi.version === g.version) {
      e.dataTransfer.setData("DownloadURL", `audio/midi:${fileName(g)}:${g.midi.url}`);
    }
  });
  return card;
}

function paintCell(g, r, s) {
  const cell = g.cells[s * rows() + r];
  cell.classList.toggle("on", !!g.hits[r][s]);
  let hit = cell.firstChild;
  if (!g.hits[r][s]) { if (hit) hit.remove(); return; }
  if (!hit) { hit = document.createElement("div"); cell.append(hit); }
  hit.className = `hit r${r}`;
  const v = g.velocities[r][s];
  hit.style.opacity = (0.25 + 0.75 * (v > 0 ? v : 0.7)).toFixed(2);
  // A positive offset means played ahead of the grid, so it is drawn to the left.
  hit.style.transform = `translateX(${(-g.offsets[r][s] * 50).toFixed(1)}%)`;
}

function toggleCell(g, r, s) {
  const on = !g.hits[r][s];
  g.hits[r][s] = on ? 1 : 0;
  g.velocities[r][s] = on ? 0.8 : 0;
  g.offsets[r][s] = 0;
  g.version++;
  paintCell(g, r, s);
  if (on) drums.hit(r, 0, 0.8);
  scheduleMidi(g);
}

function addGroup(title, meta, grooves) {
  $("#empty-state")?.remove();
  const group = document.createElement("div");
  group.className = "group";
  group.innerHTML = `<div class="group-head"><h2></h2><span class="meta"></span><span class="spacer"></span>
    <button class="play-all" title="Play these grooves one after another">▶ all</button>
    <button class="close" title="Remove">✕</button></div><div class="cards"></div>`;
  $("h2", group).textContent = title;
  $(".meta", group).textContent = meta || "";
  const cards = $(".cards", group);
  for (const g of grooves) { cards.append(renderCard(g)); scheduleMidi(g, 0); }
  $(".play-all", group).addEventListener("click", () => player.start(grooves.map((g) => g.id)));
  $(".close", group).addEventListener("click", () => {
    for (const g of grooves) { if (player.has(g.id)) player.stop(); state.grooves.delete(g.id); }
    group.remove();
    refreshSlots();
  });
  $("#results").prepend(group);
  return group;
}

// ---------------------------------------------------------------- MIDI download

const fileName = (g) => `${g.name.replace(/[^\w\-]+/g, "_").replace(/^_+|_+$/g, "") || "groove"}.mid`;

function scheduleMidi(g, delay = 400) {
  clearTimeout(g.midiTimer);
  g.midiTimer = setTimeout(() => midiUrl(g).catch(() => {}), delay);
}

async function midiUrl(g) {
  const key = `${g.version}@${tempo()}`;
  if (g.midi && g.midi.key === key) return g.midi.url;
  const version = g.version;
  const res = await fetch("api/midi/export", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(wireGroove(g)),
  });
  if (!res.ok) throw new Error(errorText(await res.json().catch(() => ({})), res));
  const url = URL.createObjectURL(await res.blob());
  if (g.midi) URL.revokeObjectURL(g.midi.url);
  g.midi = { key, url, version };
  return url;
}

async function downloadMidi(g) {
  try {
    const a = document.createElement("a");
    a.href = await midiUrl(g);
    a.download = fileName(g);
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) { toast(err.message, "error"); }
}

// ---------------------------------------------------------------- selection and slots

function select(id) {
  state.selected = id;
  $$(".groove-card.selected").forEach((c) => c.classList.remove("selected"));
  const g = state.grooves.get(id);
  if (g && g.el) g.el.classList.add("selected");
  refreshSlots();
}

function setSlot(slot, id) {
  state.slots[slot] = id;
  if (slot === "a" || slot === "b") showTool("interpolate");
  refreshSlots();
}

function refreshSlots() {
  for (const el of $$(".slot")) {
    const key = el.dataset.slot;
    const id = key === "a" || key === "b" ? state.slots[key] : state.selected;
    const g = id !== null ? state.grooves.get(id) : null;
    el.classList.toggle("filled", !!g);
    $(".slot-value", el).textContent = g ? g.name : el.dataset.placeholder;
  }
}

async function loadFileInto(slot, file) {
  try {
    const data = await uploadMidi(file);
    const g = addGroove(data.grooves[0]);
    if (data.qpm) $("#tempo").value = Math.round(data.qpm);
    const more = data.windows > 1 ? ` · first of ${data.windows} windows` : "";
    addGroup(`Uploaded ${data.filename}`, `${data.qpm.toFixed(0)} bpm${more}`, [g]);
    if (slot === "a" || slot === "b") setSlot(slot, g.id);
    else select(g.id);
    return g;
  } catch (err) { toast(err.message, "error"); return null; }
}

function setupSlots() {
  for (const el of $$(".slot")) {
    el.dataset.placeholder = $(".slot-value", el).textContent;
    const input = $("input[type=file]", el);
    el.addEventListener("click", () => input.click());
    el.addEventListener("keydown", (e) => { if (e.key === "Enter") input.click(); });
    input.addEventListener("change", () => {
      if (input.files.length) loadFileInto(el.dataset.slot, input.files[0]);
      input.value = "";
    });
    el.addEventListener("dragover", (e) => { e.preventDefault(); el.classList.add("dragover"); });
    el.addEventListener("dragleave", () => el.classList.remove("dragover"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      el.classList.remove("dragover");
      if (e.dataTransfer.files.length) loadFileInto(el.dataset.slot, e.dataTransfer.files[0]);
    });
  }
}

// ---------------------------------------------------------------- tools

function showTool(name) {
  state.tool = name;
  $$(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tool === name));
  $$(".tool").forEach((s) => { s.hidden = s.dataset.tool !== name; });
  const t = state.info && state.info.tools[name];
  const note = $("#tool-note");
  note.hidden = !t || t.available;
  note.textContent = t && !t.available ? t.reason : "";
  $$(".tool .run").forEach((b) => { b.disabled = !!t && !t.available; });
}

async function runTool(button, fn) {
  const panel = button.closest(".tool");
  panel.classList.add("busy");
  try { await fn(); } catch (err) { toast(err.message, "error"); } finally { panel.classList.remove("busy"); }
}

const temp = (id) => +$(id).value;
// The length a tool's Bars choice asks for; null (the tool's first model) when it offers one.
const barsOf = (id) => ($(id).closest(".bars-row").hidden ? null : +$(id).value);

// A panel with a Bars choice (Generate, Interpolate) offers every length /api/info lists for its
// tool (e.g. 4 bars, and 16 with the hierarchical model); the choice shows only when there is
// one to make.
function showLengths(info) {
  for (const select of $$(".tool select.bars")) {
    const t = info.tools[select.closest(".tool").dataset.tool];
    const bars = (t && t.available && t.bars) || [];
    select.replaceChildren(...bars.map((b) => new Option(`${b}${b === bars[0] ? "" : ` (${t.long_model})`}`, b)));
    select.closest(".bars-row").hidden = bars.length < 2;
  }
}

function requireSelected() {
  const g = state.grooves.get(state.selected);
  if (!g) throw new Error("Select a groove first (click its name), or drop a MIDI file on the slot.");
  return g;
}

function results(data, title, meta, nameOf) {
  const gs = data.grooves.map((d, i) => addGroove(d, nameOf(i, data.grooves.length)));
  addGroup(title, meta, gs);
  return gs;
}

const tools = {
  async generate() {
    const n = Math.max(1, Math.min(16, +$("#gen-n").value || 4));
    const bars = barsOf("#gen-bars");
    const data = await api("generate", { n, temperature: temp("#gen-temp"), qpm: tempo(), bars });
    const size = bars ? ` · ${bars} bars` : "";
    results(data, "Generate", `${n} grooves${size} · temperature ${temp("#gen-temp").toFixed(2)}`, (i) => `Sample ${i + 1}`);
  },

  async interpolate() {
    const a = state.grooves.get(state.slots.a), b = state.grooves.get(state.slots.b);
    if (!a || !b) throw new Error("Pick grooves for both A and B (buttons on each groove, or drop MIDI files).");
    const steps = Math.max(2, Math.min(16, +$("#interp-steps").value || 5));
    const bars = barsOf("#interp-bars");
    const data = await api("interpolate", { a: wireGroove(a), b: wireGroove(b), steps, temperature: temp("#interp-temp"), bars });
    results(data, "Interpolate", `${a.name} → ${b.name} · ${steps} steps`, (i, n) => `Step ${i + 1}/${n}`);
  },

  async groove() {
    const g = requireSelected();
    const data = await api("groove", { groove: wireGroove(g), temperature: temp("#groove-temp") });
    results(data, "Groove", `humanized ${g.name}`, () => `Humanized ${g.name}`);
  },

  async drumify() {
    const g = requireSelected();
    const data = await api("drumify", { groove: wireGroove(g), temperature: temp("#drumify-temp") });
    results(data, "Drumify", `from ${g.name}`, () => `Drumified ${g.name}`);
  },

  async continue() {
    const g = requireSelected();
    const bars = Math.max(1, Math.min(32, +$("#cont-bars").value || 4));
    const n = Math.max(1, Math.min(8, +$("#cont-n").value || 2));
    const data = await api("continue", { groove: wireGroove(g), bars, n, temperature: temp("#cont-temp") });
    results(data, "Continue", `${g.name} + ${bars} bars`, (i) => (i ? `${g.name} + ${bars}, variation ${i}` : `${g.name} + ${bars}`));
  },

  async similar() {
    const g = requireSelected();
    const n = Math.max(1, Math.min(16, +$("#sim-n").value || 4));
    const data = await api("similar", {
      groove: wireGroove(g), n, spread: temp("#sim-spread"), temperature: temp("#sim-temp"),
    });
    results(data, "Similar", `${n} around ${g.name} · spread ${temp("#sim-spread").toFixed(2)}`,
      (i) => `Like ${g.name} #${i + 1}`);
  },
};

// ---------------------------------------------------------------- start-up

function showInfo(info) {
  state.info = info;
  const names = [...new Set(Object.values(info.tools).filter((t) => t.available && t.model).map((t) => t.model))];
  $("#model-info").textContent = `models: ${names.join(", ") || "none"}`;
  buildTabs(info);
  showLengths(info);
  if (info.exposed) {
    $("#exposed-host").textContent = info.host;
    $("#exposed-banner").hidden = false;
  }
  showTool(state.tool);
}

// One tab per tool of the server's table, in its order; a tool without a model is struck
// through, with the reason as its tooltip.
function buildTabs(info) {
  const tabs = info.tool_list.map((row) => {
    const t = info.tools[row.name], b = document.createElement("button");
    b.setAttribute("role", "tab");
    b.dataset.tool = row.name;
    b.textContent = row.label;
    b.classList.toggle("unavailable", !!t && !t.available);
    b.title = t && !t.available ? t.reason : row.description;
    b.addEventListener("click", () => showTool(row.name));
    return b;
  });
  $(".tabs").replaceChildren(...tabs);
  if (!info.tool_list.some((row) => row.name === state.tool) && tabs.length) state.tool = tabs[0].dataset.tool;
}

function setup() {
  for (const panel of $$(".tool")) {
    $(".run", panel).addEventListener("click", (e) => runTool(e.currentTarget, tools[panel.dataset.tool]));
  }
  for (const out of $$("output")) {
    const input = $("#" + out.id.replace(/-out$/, ""));
    const show = () => { out.textContent = (+input.value).toFixed(2); };
    input.addEventListener("input", show);
    show();
  }
  $("#play").addEventListener("click", () => {
    if (player.timer !== null) { player.stop(); return; }
    player.start(state.selected !== null ? [state.selected] : [...state.grooves.keys()].slice(-1));
  });
  $("#stop").addEventListener("click", () => player.stop());
  $("#volume").addEventListener("input", (e) => { if (drums.out) drums.out.gain.value = +e.target.value; });
  $("#groove-empty").addEventListener("click", () => {
    const t = state.info && state.info.tools.groove;
    const g = emptyGroove((t && t.steps) || 32, "Pattern");
    addGroup("New pattern", "click cells to draw, then Humanize", [g]);
    select(g.id);
  });
  const pad = $("#tap-pad");
  pad.addEventListener("keydown", (e) => tapper.key(e));
  pad.addEventListener("mousedown", (e) => { e.preventDefault(); pad.focus(); tapper.tap(); });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, .tap-pad")) return;
    if (state.tool === "drumify" && !e.ctrlKey && !e.metaKey && !e.altKey) { tapper.key(e); return; }
    if (e.key === " ") { e.preventDefault(); $("#play").click(); }
    if (e.key === "Escape") player.stop();
  });
  setupSlots();
  refreshSlots();
  api("info").then(showInfo).catch((err) => {
    $("#model-info").textContent = "model unavailable";
    toast(err.message, "error");
  });
}

setup();
