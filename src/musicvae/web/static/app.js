// MusicVAE Studio: drum grids, piano rolls, Web Audio playback and the tools /api/info lists,
// talking to the /api routes. The tab bar is built from that list, grouped by what each tool's
// model makes (drums, melodies, trios or multi-track performances); each tool's panel is
// index.html's section.tool whose data-panel is its action and kind ("generate-melody"), with one
// .run button that calls runners[panel] below with the tool's row. Music of several tracks is a
// card of lanes, one above the other on one time line: a trio's melody and bass as piano rolls
// and its drums as the grid; a performance's tracks each as a piano roll (its drums' pitches
// played on the kit), on the finer grid its steps_per_quarter gives.
"use strict";

// Row labels come from /api/info (the converter's class table); until it answers, none.
const drumLabels = () => (state.info && state.info.drum_labels) || [];
const rows = () => drumLabels().length;
// The kit's row of a General MIDI drum pitch (a performance's drums play the kit), from the
// classes /api/info lists; a pitch no class has plays as a closed hi-hat.
function drumRow(pitch) {
  const row = ((state.info && state.info.drum_classes) || []).findIndex((pitches) => pitches.includes(pitch));
  return row < 0 ? TAP_ROW : row;
}
const TAP_ROW = 2; // taps are drawn as closed hi-hats; the server reduces them to one tap voice anyway
const ROLL_ROW_PX = 7; // a piano roll's row height
const NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
// General MIDI's program families, each by its first program (the melody's voice).
const VOICES = [
  [0, "Piano"], [11, "Vibraphone"], [16, "Organ"], [24, "Guitar"], [33, "Bass"], [40, "Strings"],
  [48, "Ensemble"], [56, "Trumpet"], [65, "Sax"], [73, "Flute"], [80, "Square lead"],
  [81, "Saw lead"], [88, "Pad"],
];
// A trio's voices: its melody on programs 0-31 and its bass on 32-39, as Magenta's trio
// models read them back from a MIDI file.
const TRIO_VOICES = {
  melody: VOICES.filter(([p]) => p < 32),
  bass: [[32, "Acoustic bass"], [33, "Electric bass"], [34, "Picked bass"], [38, "Synth bass"]],
};
// A trio's piano rolls, above its drums: label, voices and the range its roll shows at least.
const TRIO_LANES = {
  melody: { label: "Melody", voices: TRIO_VOICES.melody, range: [60, 72] },
  bass: { label: "Bass", voices: TRIO_VOICES.bass, range: [36, 48] },
};
const QUARTER = 4; // steps a quarter note on the 16th-note grid of grooves, melodies and trios

const state = {
  info: null,
  grooves: new Map(), // id -> groove or melody {id, kind, name, qpm, steps, ..., el}
  // interpolation endpoints (ids): grooves, melodies, trios and performances
  slots: { a: null, b: null, ma: null, mb: null, ta: null, tb: null, pa: null, pb: null },
  mix: { drums: null, melody: null }, // the Mix view's parts (ids)
  selected: null, // id used by Groove, Drumify, Similar and Continue
  tool: "generate",
  nextId: 1,
};

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const pitchName = (p) => `${NOTE_NAMES[p % 12]}${Math.floor(p / 12) - 1}`;
const kindWord = (kind) => ({ melody: "melody", trio: "trio", multiperf: "performance" }[kind] || "groove");
const KIND_HEADS = { drums: "Drums", melody: "Melody", trio: "Trio", multiperf: "Performances" };
// The piano rolls of a card: [part, lane], a lane holding its program and notes (a melody is
// its own lane; music of several tracks has its lanes by part, in order).
const lanesOf = (g) => (g.kind === "melody" ? [["melody", g]] : g.lanes ? Object.entries(g.lanes) : []);
// Steps a quarter note: 4 on the 16th-note grid; a performance's own (24 for Magenta's).
const perQuarter = (g) => g.spq || QUARTER;
// The A and B slots of the Interpolate panel of a kind of music.
const slotPair = (kind) => $$(`.tool[data-panel="interpolate-${kind}"] .slot`).map((el) => el.dataset.slot);

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

async function uploadMidi(file, kind = "drums") {
  const max = state.info ? state.info.max_upload_bytes : 1 << 20;
  if (file.size > max) throw new Error(`${file.name}: file is larger than ${max / (1 << 20)} MB`);
  const form = new FormData();
  form.append("file", file, file.name);
  const path = kind === "drums" ? "api/midi" : `api/${kind}/midi`;
  const res = await fetch(path, { method: "POST", body: form });
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

// ---------------------------------------------------------------- grooves, melodies and cards

function wireGroove(g) {
  if (g.kind === "multiperf") {
    const tracks = Object.values(g.lanes).map((l) => ({ program: l.program, is_drum: l.drum, notes: l.notes }));
    return { name: g.name, qpm: tempo(), steps: g.steps, steps_per_quarter: g.spq, tracks };
  }
  if (g.kind === "melody") {
    return { name: g.name, qpm: tempo(), program: g.program, steps: g.steps, notes: g.notes };
  }
  const drums = { hits: g.hits, velocities: g.velocities, offsets: g.offsets };
  if (g.kind === "trio") {
    const line = (part) => ({ program: g.lanes[part].program, notes: g.lanes[part].notes });
    return { name: g.name, qpm: tempo(), steps: g.steps, melody: line("melody"), bass: line("bass"), drums };
  }
  return { name: g.name, qpm: tempo(), ...drums };
}

function addGroove(data, name) {
  if (data.tracks) return addPerformance(data, name);
  if (data.drums && data.melody) return addTrio(data, name);
  if (data.notes) return addMelody(data, name);
  const g = {
    id: state.nextId++, kind: "drums", name: name || data.name || "groove", qpm: data.qpm || 120,
    steps: data.hits[0].length, hits: data.hits.map((r) => r.map(Number)),
    velocities: data.velocities.map((r) => r.slice()), offsets: data.offsets.map((r) => r.slice()),
    version: 0, midi: null,
  };
  state.grooves.set(g.id, g);
  return g;
}

function addMelody(data, name) {
  const g = {
    id: state.nextId++, kind: "melody", name: name || data.name || "melody", qpm: data.qpm || 120,
    steps: data.steps, program: data.program || 0,
    notes: data.notes.map((n) => ({ pitch: n.pitch, start: n.start, end: n.end, velocity: n.velocity || 80 })),
    version: 0, midi: null,
  };
  state.grooves.set(g.id, g);
  return g;
}

const copyNotes = (notes) => notes.map((n) => ({ pitch: n.pitch, start: n.start, end: n.end, velocity: n.velocity || 80 }));

// A trio: its drums as a groove's three matrices on the card itself (so the grid code serves
// it), its melody and bass as lanes of their own.
function addTrio(data, name) {
  const d = data.drums;
  const lane = (part, program) => ({
    part, ...TRIO_LANES[part], program: data[part] ? data[part].program : program, notes: copyNotes((data[part] || {}).notes || []),
  });
  const g = {
    id: state.nextId++, kind: "trio", name: name || data.name || "trio", qpm: data.qpm || 120,
    steps: data.steps, hits: d.hits.map((r) => r.map(Number)), velocities: d.velocities.map((r) => r.slice()),
    offsets: d.offsets.map((r) => r.slice()), lanes: { melody: lane("melody", 0), bass: lane("bass", 33) },
    version: 0, midi: null,
  };
  state.grooves.set(g.id, g);
  return g;
}

// A multi-track performance: one lane per track, in the order the server gives them (pitched
// tracks by program, the drums last). A pitched lane goes out to Web MIDI on its own channel
// (the nth from the melody channel), the drums on channel 10.
function addPerformance(data, name) {
  const lanes = {};
  let pitched = 0;
  data.tracks.forEach((t, i) => {
    lanes[`track${i + 1}`] = {
      part: `track${i + 1}`, label: t.is_drum ? "Drums" : `Track ${i + 1}`, program: t.program, drum: t.is_drum,
      poly: true, limits: [0, 127], range: t.is_drum ? [36, 46] : [60, 72], channel: t.is_drum ? null : pitched++,
      notes: t.notes.map((n) => ({ pitch: n.pitch, start: n.start, end: n.end, velocity: n.velocity || 100 })),
    };
  });
  const g = {
    id: state.nextId++, kind: "multiperf", name: name || data.name || "performance", qpm: data.qpm || 120,
    steps: data.steps, spq: data.steps_per_quarter || 24, lanes, version: 0, midi: null,
  };
  state.grooves.set(g.id, g);
  return g;
}

// General MIDI's program families, eight programs each.
const FAMILY_NAMES = ["Piano", "Chromatic percussion", "Organ", "Guitar", "Bass", "Strings", "Ensemble", "Brass",
  "Reed", "Pipe", "Synth lead", "Synth pad", "Synth effects", "Ethnic", "Percussive", "Sound effects"];
// A program that is none of VOICES, by its family: "Bass (program 32)".
const programName = (program) => `${FAMILY_NAMES[(program >> 3) & 15]} (program ${program})`;

function emptyGroove(steps, name) {
  const zeros = () => Array.from({ length: rows() }, () => new Array(steps).fill(0));
  return addGroove({ hits: zeros(), velocities: zeros(), offsets: zeros(), qpm: tempo() }, name);
}

function cardHead(g) {
  const card = document.createElement("div");
  card.className = `groove-card ${g.kind}`;
  card.dataset.id = g.id;
  card.dataset.kind = g.kind;
  const what = kindWord(g.kind);
  card.innerHTML = `
    <div class="card-head">
      <span class="name" title="Select"></span>
      <button class="play" title="Play this ${what}">▶</button>
      <button class="to-a" title="Use as interpolation start">A</button>
      <button class="to-b" title="Use as interpolation end">B</button>
      <button class="to-mix" title="Play it in the Mix, with a ${g.kind === "melody" ? "groove" : "melody"}"${g.lanes ? " hidden" : ""}>Mix</button>
      <a class="dl" href="#" draggable="true" title="Download MIDI (or drag out)">⬇ MIDI</a>
      <button class="wav" title="Download a WAV rendered by the studio">WAV</button>
    </div>`;
  $(".name", card).textContent = g.name;
  $(".name", card).addEventListener("click", () => select(g.id));
  $(".play", card).addEventListener("click", () => { select(g.id); player.start([g.id]); });
  const pair = slotPair(g.kind);
  $(".to-a", card).addEventListener("click", () => setSlot(pair[0], g.id));
  $(".to-b", card).addEventListener("click", () => setSlot(pair[1], g.id));
  $(".to-mix", card).addEventListener("click", () => { state.mix[g.kind] = g.id; refreshMix(); });
  $(".wav", card).addEventListener("click", () => downloadWav(g));
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

function renderCard(g) {
  if (g.lanes) return renderLanesCard(g);
  return g.kind === "melody" ? renderMelodyCard(g) : renderGrooveCard(g);
}

function renderGrooveCard(g) {
  const card = cardHead(g);
  g.el = card;
  card.append(drumGrid(g));
  return card;
}

// A drum grid of g's hits: one cell per drum and step; a click toggles a hit.
function drumGrid(g) {
  const wrap = document.createElement("div");
  wrap.className = "grid-wrap";
  wrap.innerHTML = `<div class="row-labels"></div><div class="grid"></div>`;
  $(".row-labels", wrap).innerHTML = drumLabels().map((d) => `<div>${d}</div>`).join("");
  const grid = $(".grid", wrap);
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
  g.cells = $$(".cell", grid);
  for (let s = 0; s < g.steps; s++) for (let r = 0; r < rows(); r++) paintCell(g, r, s);
  grid.addEventListener("click", (e) => {
    const cell = e.target.closest(".cell");
    if (cell) toggleCell(g, +cell.dataset.row, +cell.dataset.step);
  });
  return wrap;
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

// A piano roll: one row per pitch from the lane's range (at least C4-C5 for a melody, C2-C3
// for a bass, two semitones of room, within the piano's keys or the lane's limits), one column
// per step; a click adds a note or takes one away.
function rollRange(lane, [lo0, hi0] = [60, 72]) {
  const pitches = lane.notes.map((n) => n.pitch);
  const [min, max] = lane.limits || [21, 108];
  const lo = Math.max(min, Math.min(lo0, ...pitches) - 2), hi = Math.min(max, Math.max(hi0, ...pitches) + 2);
  return [lo, hi];
}

// A select of voices (General MIDI programs) that sets the lane's program.
function voiceSelect(g, lane, voices = VOICES) {
  const voice = document.createElement("select");
  voice.className = "program";
  voice.title = "The voice it plays on (its General MIDI program)";
  fillVoices(voice, lane.program, voices);
  voice.addEventListener("change", () => { lane.program = +voice.value; g.version++; scheduleMidi(g); });
  return voice;
}

function renderMelodyCard(g) {
  const card = cardHead(g);
  $(".card-head", card).insertBefore(voiceSelect(g, g), $(".play", card));
  g.el = card;
  card.append(pianoRoll(g, g));
  return card;
}

// A card of lanes: each lane's piano roll (a trio's melody and bass, a performance's tracks),
// then the drum grid where the music has one (a trio's), one above the other in one scrolling
// box, so the lanes' steps line up.
function renderLanesCard(g) {
  const card = cardHead(g);
  g.el = card;
  const lanes = document.createElement("div");
  lanes.className = "lanes";
  const head = (label, extra) => {
    const el = document.createElement("div");
    el.className = "lane-head";
    el.innerHTML = `<span class="lane-name"></span>`;
    $(".lane-name", el).textContent = label;
    if (extra) el.append(extra);
    return el;
  };
  for (const [part, lane] of Object.entries(g.lanes)) {
    const box = document.createElement("div");
    box.className = "lane" + (lane.drum ? " drum-lane" : "");
    box.dataset.lane = part;
    box.append(head(lane.label, lane.drum ? null : voiceSelect(g, lane, lane.voices)), pianoRoll(g, lane, lane.range));
    lanes.append(box);
  }
  if (g.hits) {
    const drumsBox = document.createElement("div");
    drumsBox.className = "lane";
    drumsBox.dataset.lane = "drums";
    drumsBox.append(head("Drums"), drumGrid(g));
    lanes.append(drumsBox);
  }
  card.append(lanes);
  return card;
}

// The piano roll of a lane of g (a melody is its own lane): its notes, a click edits them.
function pianoRoll(g, lane, range) {
  [lane.lo, lane.hi] = rollRange(lane, range);
  const wrap = document.createElement("div");
  wrap.className = "grid-wrap";
  const keys = document.createElement("div");
  keys.className = "roll-keys";
  const roll = document.createElement("div");
  roll.className = "roll";
  roll.style.setProperty("--steps", g.steps);
  roll.style.height = `${(lane.hi - lane.lo + 1) * ROLL_ROW_PX}px`;
  keys.style.height = roll.style.height;
  const frag = document.createDocumentFragment();
  for (let p = lane.hi; p >= lane.lo; p--) {
    const row = document.createElement("div");
    row.className = "roll-row" + ([1, 3, 6, 8, 10].includes(p % 12) ? " black" : "");
    frag.append(row);
    const key = document.createElement("div");
    key.textContent = p % 12 === 0 ? pitchName(p) : "";
    keys.append(key);
  }
  const beat = perQuarter(g);
  for (let s = beat; s < g.steps; s += beat) {
    const line = document.createElement("div");
    line.className = "roll-beat" + (s % (4 * beat) === 0 ? " bar" : "");
    line.style.left = `${(100 * s) / g.steps}%`;
    frag.append(line);
  }
  roll.append(frag);
  const notes = document.createElement("div");
  notes.className = "notes";
  const head = document.createElement("div");
  head.className = "playhead";
  roll.append(notes, head);
  wrap.append(keys, roll);
  lane.notesEl = notes;
  paintNotes(g, lane);
  roll.addEventListener("click", (e) => {
    const box = roll.getBoundingClientRect();
    const step = Math.floor(((e.clientX - box.left) / box.width) * g.steps);
    const pitch = lane.hi - Math.floor((e.clientY - box.top) / ROLL_ROW_PX);
    if (step >= 0 && step < g.steps && pitch >= lane.lo && pitch <= lane.hi) editNote(g, lane, pitch, step);
  });
  return wrap;
}

function fillVoices(select, program, voices = VOICES) {
  const known = voices.some(([p]) => p === program);
  const options = known ? voices : [[program, programName(program)], ...voices];
  select.replaceChildren(...options.map(([p, label]) => new Option(label, p)));
  select.value = program;
}

function paintNotes(g, lane) {
  lane.notesEl.replaceChildren(...lane.notes.map((n) => {
    const el = document.createElement("div");
    el.className = "note";
    el.dataset.pitch = n.pitch;
    el.dataset.start = n.start;
    el.title = `${pitchName(n.pitch)}, steps ${n.start}-${n.end - 1}`;
    el.style.left = `${(100 * n.start) / g.steps}%`;
    el.style.width = `${(100 * (n.end - n.start)) / g.steps}%`;
    el.style.top = `${(lane.hi - n.pitch) * ROLL_ROW_PX}px`;
    return el;
  }));
}

// A click on a sounding note's own pitch removes it; elsewhere a new note starts there (an 8th
// long, up to the next note), cutting the note that sounded: melodies (and a trio's melody and
// bass) play one note at a time. A performance's lanes play chords: a note cuts only one of
// its own pitch.
function editNote(g, lane, pitch, step) {
  const sounding = (n) => n.start <= step && step < n.end && (!lane.poly || n.pitch === pitch);
  const at = lane.notes.find(sounding);
  if (at && at.pitch === pitch) {
    lane.notes = lane.notes.filter((n) => n !== at);
  } else {
    if (at) {
      if (at.start === step) lane.notes = lane.notes.filter((n) => n !== at);
      else at.end = step;
    }
    const later = lane.notes.filter((n) => n.start > step && (!lane.poly || n.pitch === pitch));
    const next = Math.min(g.steps, ...later.map((n) => n.start));
    const eighth = perQuarter(g) / 2;
    lane.notes.push({ pitch, start: step, end: Math.min(step + eighth, next), velocity: 80 });
    lane.notes.sort((a, b) => a.start - b.start);
    const seconds = (60 / tempo()) / 2;
    if (lane.drum) drums.hit(drumRow(pitch), 0, 80 / 127);
    else synth.note(pitch, 0, seconds, 80, lane.program);
  }
  g.version++;
  paintNotes(g, lane);
  scheduleMidi(g);
}

function addGroup(title, meta, grooves) {
  $("#empty-state")?.remove();
  const group = document.createElement("div");
  group.className = "group";
  group.innerHTML = `<div class="group-head"><h2></h2><span class="meta"></span><span class="spacer"></span>
    <button class="play-all" title="Play these one after another">▶ all</button>
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
    refreshMix();
  });
  $("#results").prepend(group);
  return group;
}

// ---------------------------------------------------------------- downloads

const baseName = (g) => g.name.replace(/[^\w\-]+/g, "_").replace(/^_+|_+$/g, "") || kindWord(g.kind);
const fileName = (g) => `${baseName(g)}.mid`;
const exportPath = (g, what) => (g.kind === "drums" ? `api/${what}` : `api/${g.kind}/${what}`);

function scheduleMidi(g, delay = 400) {
  clearTimeout(g.midiTimer);
  g.midiTimer = setTimeout(() => midiUrl(g).catch(() => {}), delay);
}

async function fileBlob(g, what) {
  const res = await fetch(exportPath(g, what), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(wireGroove(g)),
  });
  if (!res.ok) throw new Error(errorText(await res.json().catch(() => ({})), res));
  return res.blob();
}

async function midiUrl(g) {
  const key = `${g.version}@${tempo()}`;
  if (g.midi && g.midi.key === key) return g.midi.url;
  const version = g.version;
  const url = URL.createObjectURL(await fileBlob(g, "midi/export"));
  if (g.midi) URL.revokeObjectURL(g.midi.url);
  g.midi = { key, url, version };
  return url;
}

function saveAs(url, name) {
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

async function downloadMidi(g) {
  try { saveAs(await midiUrl(g), fileName(g)); } catch (err) { toast(err.message, "error"); }
}

async function downloadWav(g) {
  try {
    const loop = $("#wav-loop").value; // "", or a loop-length WAV: "fold" or "cut"
    const url = URL.createObjectURL(await fileBlob(g, loop ? `audio?loop=${loop}` : "audio"));
    saveAs(url, `${baseName(g)}.wav`);
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) { toast(err.message, "error"); }
}

// ---------------------------------------------------------------- selection, slots and mix

function select(id) {
  state.selected = id;
  $$(".groove-card.selected").forEach((c) => c.classList.remove("selected"));
  const g = state.grooves.get(id);
  if (g && g.el) g.el.classList.add("selected");
  refreshSlots();
}

function setSlot(slot, id) {
  state.slots[slot] = id;
  const kind = $(`.slot[data-slot="${slot}"]`).dataset.kind;
  const tool = toolFor("interpolate", kind);
  if (tool) showTool(tool);
  refreshSlots();
}

function refreshSlots() {
  for (const el of $$(".slot")) {
    const key = el.dataset.slot;
    const id = key in state.slots ? state.slots[key] : state.selected;
    const g = id !== null ? state.grooves.get(id) : null;
    const fits = !!g && g.kind === el.dataset.kind;
    el.classList.toggle("filled", fits);
    $(".slot-value", el).textContent = fits ? g.name : el.dataset.placeholder;
  }
}

function refreshMix() {
  for (const kind of ["drums", "melody"]) {
    const g = state.grooves.get(state.mix[kind]);
    if (!g) state.mix[kind] = null;
    $(`#mix-${kind}`).textContent = g ? g.name : "none";
  }
}

async function loadFileInto(slot, kind, file) {
  try {
    const data = await uploadMidi(file, kind);
    const g = addGroove(musicOf(data)[0]);
    if (data.qpm) $("#tempo").value = Math.round(data.qpm);
    const more = data.windows > 1 ? ` · first of ${data.windows} windows` : "";
    addGroup(`Uploaded ${data.filename}`, `${data.qpm.toFixed(0)} bpm${more}`, [g]);
    if (slot in state.slots) setSlot(slot, g.id);
    else select(g.id);
    return g;
  } catch (err) { toast(err.message, "error"); return null; }
}

function setupSlots() {
  for (const el of $$(".slot")) {
    el.dataset.placeholder = $(".slot-value", el).textContent;
    const input = $("input[type=file]", el);
    const load = (file) => loadFileInto(el.dataset.slot, el.dataset.kind, file);
    el.addEventListener("click", () => input.click());
    el.addEventListener("keydown", (e) => { if (e.key === "Enter") input.click(); });
    input.addEventListener("change", () => {
      if (input.files.length) load(input.files[0]);
      input.value = "";
    });
    el.addEventListener("dragover", (e) => { e.preventDefault(); el.classList.add("dragover"); });
    el.addEventListener("dragleave", () => el.classList.remove("dragover"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      el.classList.remove("dragover");
      if (e.dataTransfer.files.length) load(e.dataTransfer.files[0]);
    });
  }
}

// ---------------------------------------------------------------- tools

const toolRow = (name) => state.info && state.info.tool_list.find((t) => t.name === name);
const toolInfo = (name) => state.info && state.info.tools[name];
const kindOf = (name) => (toolInfo(name) && toolInfo(name).kind) || "drums";
const panelOf = (name) => {
  const row = toolRow(name);
  return $(`.tool[data-panel="${row ? row.action : name}-${kindOf(name)}"]`);
};
// The tool this studio has for an action on a kind of music ("interpolate", "melody").
const toolFor = (action, kind) => state.info
  && (state.info.tool_list.find((t) => t.action === action && kindOf(t.name) === kind) || {}).name;

function showTool(name) {
  state.tool = name;
  $$(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tool === name));
  const panel = panelOf(name) || $('.tool[data-panel="generate-drums"]');
  $$(".tool").forEach((s) => { s.hidden = s !== panel; });
  panel.dataset.tool = name;
  const t = toolInfo(name);
  const note = $("#tool-note");
  note.hidden = !t || t.available;
  note.textContent = t && !t.available ? t.reason : "";
  $$(".tool .run").forEach((b) => { b.disabled = !!t && !t.available; });
  showLengths(panel, t);
  $$(".chords-row", panel).forEach((row) => { row.hidden = !(t && t.available && t.chords); });
}

async function runTool(button, fn) {
  const panel = button.closest(".tool");
  panel.classList.add("busy");
  try { await fn(panel.dataset.tool); } catch (err) { toast(err.message, "error"); } finally { panel.classList.remove("busy"); }
}

const temp = (id) => +$(id).value;
// A chord model's chords as typed, where its panel shows the field (undefined: none).
const chordsOf = (id) => ($(id).closest(".chords-row").hidden ? undefined : $(id).value.trim() || undefined);
// The length a tool's Bars choice asks for; null (the tool's first model) when it offers one.
const barsOf = (id) => ($(id).closest(".bars-row").hidden ? null : +$(id).value);
const endpoint = (name) => toolRow(name).endpoint.replace(/^\/api\//, ""); // for api()

// A panel with a Bars choice offers every length /api/info lists for its tool (e.g. 4 bars, and
// 16 with the hierarchical model); the choice shows only when there is one to make.
function showLengths(panel, t) {
  const select = $("select.bars", panel);
  if (!select) return;
  const bars = (t && t.available && t.bars) || [];
  const was = select.value;
  select.replaceChildren(...bars.map((b) => new Option(`${b}${b === bars[0] ? "" : ` (${t.long_model})`}`, b)));
  if (bars.map(String).includes(was)) select.value = was;
  select.closest(".bars-row").hidden = bars.length < 2;
}

function requireSelected(kind) {
  const g = state.grooves.get(state.selected);
  const what = kindWord(kind);
  if (!g || g.kind !== kind) throw new Error(`Select a ${what} first (click its name), or drop a MIDI file on the slot.`);
  return g;
}

// The music of an answer, whichever kind it is.
const musicOf = (data) => data.grooves || data.melodies || data.trios || data.performances;

function results(data, title, meta, nameOf) {
  const items = musicOf(data);
  const gs = items.map((d, i) => addGroove(d, nameOf(i, items.length)));
  addGroup(title, meta, gs);
  return gs;
}

// The calls behind each panel, given the name of the tool it shows.
const runners = {
  async "generate-drums"(tool) {
    const n = Math.max(1, Math.min(16, +$("#gen-n").value || 4));
    const bars = barsOf("#gen-bars");
    const data = await api(endpoint(tool), { n, temperature: temp("#gen-temp"), qpm: tempo(), bars });
    const size = bars ? ` · ${bars} bars` : "";
    results(data, "Generate", `${n} grooves${size} · temperature ${temp("#gen-temp").toFixed(2)}`, (i) => `Sample ${i + 1}`);
  },

  async "generate-melody"(tool) {
    const n = Math.max(1, Math.min(16, +$("#mgen-n").value || 4));
    const bars = barsOf("#mgen-bars");
    const program = +$("#mgen-program").value;
    const chords = chordsOf("#mgen-chords");
    const data = await api(endpoint(tool), { n, temperature: temp("#mgen-temp"), qpm: tempo(), bars, program, chords });
    const size = bars ? ` · ${bars} bars` : "";
    results(data, "Generate melodies", `${n} melodies${size} · temperature ${temp("#mgen-temp").toFixed(2)}`, (i) => `Melody ${i + 1}`);
  },

  async "generate-trio"(tool) {
    const n = Math.max(1, Math.min(16, +$("#tgen-n").value || 2));
    const program = +$("#tgen-program").value;
    const data = await api(endpoint(tool), { n, temperature: temp("#tgen-temp"), qpm: tempo(), program });
    results(data, "Generate trios", `${n} trios · temperature ${temp("#tgen-temp").toFixed(2)}`, (i) => `Trio ${i + 1}`);
  },

  async "interpolate-trio"(tool) {
    const a = state.grooves.get(state.slots.ta), b = state.grooves.get(state.slots.tb);
    if (!a || !b) throw new Error("Pick trios for both A and B (buttons on each trio, or drop MIDI files).");
    const steps = Math.max(2, Math.min(16, +$("#tinterp-steps").value || 5));
    const data = await api(endpoint(tool), { a: wireGroove(a), b: wireGroove(b), steps, temperature: temp("#tinterp-temp") });
    results(data, "Interpolate trios", `${a.name} → ${b.name} · ${steps} steps`, (i, n) => `Step ${i + 1}/${n}`);
  },

  async "continue-trio"(tool) {
    const g = requireSelected("trio");
    const bars = Math.max(1, Math.min(16, +$("#tcont-bars").value || 4));
    const n = Math.max(1, Math.min(8, +$("#tcont-n").value || 1));
    const data = await api(endpoint(tool), { groove: wireGroove(g), bars, n, temperature: temp("#tcont-temp") });
    results(data, "Continue trio", `${g.name} + ${bars} bars`, (i) => (i ? `${g.name} + ${bars}, variation ${i}` : `${g.name} + ${bars}`));
  },

  async "generate-multiperf"(tool) {
    const n = Math.max(1, Math.min(16, +$("#pgen-n").value || 4));
    const chords = chordsOf("#pgen-chords");
    const data = await api(endpoint(tool), { n, temperature: temp("#pgen-temp"), qpm: tempo(), chords });
    results(data, "Generate performances", `${n} performances · temperature ${temp("#pgen-temp").toFixed(2)}`, (i) => `Performance ${i + 1}`);
  },

  async "interpolate-multiperf"(tool) {
    const a = state.grooves.get(state.slots.pa), b = state.grooves.get(state.slots.pb);
    if (!a || !b) throw new Error("Pick performances for both A and B (buttons on each performance, or drop MIDI files).");
    const steps = Math.max(2, Math.min(16, +$("#pinterp-steps").value || 5));
    const data = await api(endpoint(tool), { a: wireGroove(a), b: wireGroove(b), steps, temperature: temp("#pinterp-temp") });
    results(data, "Interpolate performances", `${a.name} → ${b.name} · ${steps} steps`, (i, n) => `Step ${i + 1}/${n}`);
  },

  async "interpolate-drums"(tool) {
    const a = state.grooves.get(state.slots.a), b = state.grooves.get(state.slots.b);
    if (!a || !b) throw new Error("Pick grooves for both A and B (buttons on each groove, or drop MIDI files).");
    const steps = Math.max(2, Math.min(16, +$("#interp-steps").value || 5));
    const bars = barsOf("#interp-bars");
    const data = await api(endpoint(tool), { a: wireGroove(a), b: wireGroove(b), steps, temperature: temp("#interp-temp"), bars });
    results(data, "Interpolate", `${a.name} → ${b.name} · ${steps} steps`, (i, n) => `Step ${i + 1}/${n}`);
  },

  async "interpolate-melody"(tool) {
    const a = state.grooves.get(state.slots.ma), b = state.grooves.get(state.slots.mb);
    if (!a || !b) throw new Error("Pick melodies for both A and B (buttons on each melody, or drop MIDI files).");
    const steps = Math.max(2, Math.min(16, +$("#minterp-steps").value || 5));
    const bars = barsOf("#minterp-bars");
    const data = await api(endpoint(tool), { a: wireGroove(a), b: wireGroove(b), steps, temperature: temp("#minterp-temp"), bars });
    results(data, "Interpolate melodies", `${a.name} → ${b.name} · ${steps} steps`, (i, n) => `Step ${i + 1}/${n}`);
  },

  async "groove-drums"(tool) {
    const g = requireSelected("drums");
    const data = await api(endpoint(tool), { groove: wireGroove(g), temperature: temp("#groove-temp") });
    results(data, "Groove", `humanized ${g.name}`, () => `Humanized ${g.name}`);
  },

  async "drumify-drums"(tool) {
    const g = requireSelected("drums");
    const data = await api(endpoint(tool), { groove: wireGroove(g), temperature: temp("#drumify-temp") });
    results(data, "Drumify", `from ${g.name}`, () => `Drumified ${g.name}`);
  },

  async "continue-drums"(tool) {
    const g = requireSelected("drums");
    const bars = Math.max(1, Math.min(32, +$("#cont-bars").value || 4));
    const n = Math.max(1, Math.min(8, +$("#cont-n").value || 2));
    const data = await api(endpoint(tool), { groove: wireGroove(g), bars, n, temperature: temp("#cont-temp") });
    results(data, "Continue", `${g.name} + ${bars} bars`, (i) => (i ? `${g.name} + ${bars}, variation ${i}` : `${g.name} + ${bars}`));
  },

  async "continue-melody"(tool) {
    const g = requireSelected("melody");
    const bars = Math.max(1, Math.min(32, +$("#mcont-bars").value || 2));
    const n = Math.max(1, Math.min(8, +$("#mcont-n").value || 2));
    // The main model's Continue reads the music as "groove"; the melody model's as "melody".
    const key = toolRow(tool).role === "melody" ? "melody" : "groove";
    const data = await api(endpoint(tool), { [key]: wireGroove(g), bars, n, temperature: temp("#mcont-temp") });
    results(data, "Continue melody", `${g.name} + ${bars} bars`, (i) => (i ? `${g.name} + ${bars}, variation ${i}` : `${g.name} + ${bars}`));
  },

  async "similar-drums"(tool) {
    const g = requireSelected("drums");
    const n = Math.max(1, Math.min(16, +$("#sim-n").value || 4));
    const data = await api(endpoint(tool), {
      groove: wireGroove(g), n, spread: temp("#sim-spread"), temperature: temp("#sim-temp"),
    });
    results(data, "Similar", `${n} around ${g.name} · spread ${temp("#sim-spread").toFixed(2)}`,
      (i) => `Like ${g.name} #${i + 1}`);
  },
};

// ---------------------------------------------------------------- start-up

function showInfo(info) {
  state.info = info;
  const models = info.models || [];
  $("#model-info").textContent = models.map((m) => m.name).join(" · ") || "no models";
  $("#model-info").title = models.map((m) => `${m.name}: ${m.config} (${m.source})`).join("\n");
  // One default temperature, the command line's: the sampling tools start from it.
  for (const id of ["#gen-temp", "#interp-temp", "#sim-temp", "#cont-temp", "#mgen-temp", "#minterp-temp", "#mcont-temp",
    "#tgen-temp", "#tinterp-temp", "#tcont-temp", "#pgen-temp", "#pinterp-temp"]) {
    $(id).value = info.default_temperature;
    $(id).dispatchEvent(new Event("input"));
  }
  buildTabs(info);
  const kinds = new Set(Object.values(info.tools).filter((t) => t.available).map((t) => t.kind));
  $("#mix").hidden = !(kinds.has("drums") && kinds.has("melody"));
  $("#midi-bass-row").hidden = !kinds.has("trio");
  if (info.exposed) {
    $("#exposed-host").textContent = info.host;
    $("#exposed-banner").hidden = false;
  }
  showTool(state.tool);
}

// One tab per tool of the server's list, in its order, under a heading per kind when the studio
// serves both drums and melodies; a tool without a model is struck through, with the reason as
// its tooltip.
function buildTabs(info) {
  const kinds = [...new Set(info.tool_list.map((row) => kindOf(row.name)))];
  const items = [];
  for (const kind of kinds) {
    if (kinds.length > 1) {
      const head = document.createElement("span");
      head.className = "tab-group";
      head.textContent = KIND_HEADS[kind] || kind;
      items.push(head);
    }
    for (const row of info.tool_list.filter((r) => kindOf(r.name) === kind)) {
      const t = info.tools[row.name], b = document.createElement("button");
      b.setAttribute("role", "tab");
      b.dataset.tool = row.name;
      b.dataset.kind = kind;
      b.textContent = row.label;
      b.classList.toggle("unavailable", !!t && !t.available);
      b.title = t && !t.available ? t.reason : row.description;
      b.addEventListener("click", () => showTool(row.name));
      items.push(b);
    }
  }
  $(".tabs").replaceChildren(...items);
  const first = info.tool_list[0];
  if (!info.tool_list.some((row) => row.name === state.tool) && first) state.tool = first.name;
}

function newMelody() {
  const t = toolInfo(state.tool);
  const g = addMelody({ steps: (t && t.steps) || 32, notes: [], qpm: tempo(), program: +$("#mgen-program").value }, "Drawn melody");
  addGroup("New melody", "click the roll to draw notes", [g]);
  select(g.id);
  const pair = ["ma", "mb"].find((s) => !state.grooves.has(state.slots[s]));
  if (pair && $(".tool:not([hidden])").dataset.panel === "interpolate-melody") setSlot(pair, g.id);
}

// An empty trio of the trio model's length, to draw on; it fills a free A/B slot of the
// trio Interpolate panel when that is open.
function newTrio() {
  const t = toolInfo(state.tool);
  const steps = (t && t.steps) || 256;
  const zeros = () => Array.from({ length: rows() }, () => new Array(steps).fill(0));
  const g = addTrio({
    steps, qpm: tempo(), melody: { program: +$("#tgen-program").value, notes: [] }, bass: { program: 33, notes: [] },
    drums: { hits: zeros(), velocities: zeros(), offsets: zeros() },
  }, "Drawn trio");
  addGroup("New trio", "click the rolls and the grid to draw", [g]);
  select(g.id);
  const pair = ["ta", "tb"].find((s) => !state.grooves.has(state.slots[s]));
  if (pair && $(".tool:not([hidden])").dataset.panel === "interpolate-trio") setSlot(pair, g.id);
}

function setup() {
  for (const panel of $$(".tool")) {
    $(".run", panel).addEventListener("click", (e) => runTool(e.currentTarget, runners[panel.dataset.panel]));
  }
  for (const out of $$("output")) {
    const input = $("#" + out.id.replace(/-out$/, ""));
    const show = () => { out.textContent = (+input.value).toFixed(2); };
    input.addEventListener("input", show);
    show();
  }
  fillVoices($("#mgen-program"), 0);
  fillVoices($("#tgen-program"), 0, TRIO_VOICES.melody);
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
  $$(".new-melody").forEach((b) => b.addEventListener("click", newMelody));
  $$(".new-trio").forEach((b) => b.addEventListener("click", newTrio));
  $("#mix-play").addEventListener("click", () => {
    const parts = [state.mix.drums, state.mix.melody].filter((id) => state.grooves.has(id));
    if (parts.length < 2) { toast("Press Mix on a groove and on a melody first."); return; }
    player.start([parts]);
  });
  const pad = $("#tap-pad");
  pad.addEventListener("keydown", (e) => tapper.key(e));
  pad.addEventListener("mousedown", (e) => { e.preventDefault(); pad.focus(); tapper.tap(); });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select, .tap-pad")) return;
    if (toolRow(state.tool)?.action === "drumify" && !e.ctrlKey && !e.metaKey && !e.altKey) { tapper.key(e); return; }
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
