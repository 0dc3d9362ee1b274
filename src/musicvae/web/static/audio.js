// MusicVAE Studio: synthesised drum voices and melodic voices (Web Audio), the lookahead
// transport and tap input. Loaded before app.js, which provides $, $$, state and toast, and
// midi.js (midi); all are classic scripts.
"use strict";

// ---------------------------------------------------------------- synthesised drums

const drums = {
  ctx: null, out: null, noise: null, openHat: null,

  ensure() {
    if (!this.ctx) {
      this.ctx = new (window.AudioContext || window.webkitAudioContext)();
      const comp = this.ctx.createDynamicsCompressor();
      comp.threshold.value = -10;
      comp.connect(this.ctx.destination);
      this.out = this.ctx.createGain();
      this.out.gain.value = +$("#volume").value;
      this.out.connect(comp);
      const len = this.ctx.sampleRate;
      this.noise = this.ctx.createBuffer(1, len, this.ctx.sampleRate);
      const d = this.noise.getChannelData(0);
      for (let i = 0; i < len; i++) d[i] = Math.random() * 2 - 1;
    }
    if (this.ctx.state === "suspended") this.ctx.resume();
    return this.ctx;
  },

  env(t, peak, decay, attack = 0.001) {
    const g = this.ctx.createGain();
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(Math.max(peak, 0.0002), t + attack);
    g.gain.exponentialRampToValueAtTime(0.0001, t + attack + decay);
    return g;
  },

  noiseSrc(t, dur) {
    const src = this.ctx.createBufferSource();
    src.buffer = this.noise;
    src.start(t, Math.random() * 0.5);
    src.stop(t + dur);
    return src;
  },

  filter(type, freq, q = 0.7) {
    const f = this.ctx.createBiquadFilter();
    f.type = type; f.frequency.value = freq; f.Q.value = q;
    return f;
  },

  osc(type, freq, t, dur) {
    const o = this.ctx.createOscillator();
    o.type = type; o.frequency.setValueAtTime(freq, t);
    o.start(t); o.stop(t + dur);
    return o;
  },

  // Six detuned square waves at inharmonic ratios: the classic analogue-machine cymbal metal.
  metal(t, dur, base) {
    const mix = this.ctx.createGain();
    mix.gain.value = 0.18;
    for (const r of [2, 3, 4.16, 5.43, 6.79, 8.21]) this.osc("square", base * r, t, dur).connect(mix);
    return mix;
  },

  kick(t, v) {
    const o = this.osc("sine", 150, t, 0.6);
    o.frequency.exponentialRampToValueAtTime(48, t + 0.13);
    o.connect(this.env(t, v * 1.1, 0.45)).connect(this.out);
    const click = this.noiseSrc(t, 0.02);
    click.connect(this.filter("lowpass", 2500)).connect(this.env(t, v * 0.35, 0.012)).connect(this.out);
  },

  snare(t, v) {
    const n = this.noiseSrc(t, 0.3);
    n.connect(this.filter("highpass", 1400)).connect(this.env(t, v * 0.75, 0.19)).connect(this.out);
    for (const [f, a] of [[185, 0.45], [330, 0.25]]) {
      const o = this.osc("triangle", f, t, 0.2);
      o.frequency.exponentialRampToValueAtTime(f * 0.8, t + 0.1);
      o.connect(this.env(t, v * a, 0.09)).connect(this.out);
    }
  },

  hat(t, v, open) {
    const dur = open ? 0.45 : 0.07;
    const g = this.env(t, v * (open ? 0.5 : 0.55), open ? 0.38 : 0.05);
    this.metal(t, dur + 0.05, 40).connect(this.filter("bandpass", 10000, 0.8))
      .connect(this.filter("highpass", 7000)).connect(g).connect(this.out);
    if (open) this.openHat = { g, t };
    else if (this.openHat && this.openHat.t < t) {
      // A closed hi-hat chokes a ringing open one, as on a real kit.
      this.openHat.g.gain.cancelScheduledValues(t);
      this.openHat.g.gain.setTargetAtTime(0.0001, t, 0.008);
      this.openHat = null;
    }
  },

  tom(t, v, f) {
    const o = this.osc("sine", f, t, 0.5);
    o.frequency.exponentialRampToValueAtTime(f * 0.62, t + 0.3);
    o.connect(this.env(t, v * 0.85, 0.36)).connect(this.out);
    this.noiseSrc(t, 0.05).connect(this.filter("bandpass", f * 4, 1)).connect(this.env(t, v * 0.15, 0.03))
      .connect(this.out);
  },

  cymbal(t, v, ride) {
    const dur = ride ? 0.9 : 1.6;
    this.metal(t, dur, ride ? 62 : 48).connect(this.filter("highpass", ride ? 6500 : 5000))
      .connect(this.env(t, v * (ride ? 0.35 : 0.5), dur)).connect(this.out);
    this.noiseSrc(t, dur).connect(this.filter("highpass", ride ? 9000 : 6000))
      .connect(this.env(t, v * (ride ? 0.08 : 0.3), dur * 0.8)).connect(this.out);
    if (ride) this.osc("sine", 3100, t, 0.5).connect(this.env(t, v * 0.06, 0.45)).connect(this.out);
  },

  hit(row, time, velocity) {
    const ctx = this.ensure();
    const t = Math.max(time, ctx.currentTime + 0.002);
    const v = velocity > 0 ? velocity : 0.7; // fixed-velocity grooves carry 0
    switch (row) {
      case 0: return this.kick(t, v);
      case 1: return this.snare(t, v);
      case 2: return this.hat(t, v, false);
      case 3: return this.hat(t, v, true);
      case 4: return this.tom(t, v, 95);
      case 5: return this.tom(t, v, 140);
      case 6: return this.tom(t, v, 205);
      case 7: return this.cymbal(t, v, false);
      case 8: return this.cymbal(t, v, true);
    }
  },

  click(t, accent) {
    this.ensure();
    this.osc("square", accent ? 1760 : 1320, t, 0.03).connect(this.env(t, 0.15, 0.025)).connect(this.out);
  },
};

// ---------------------------------------------------------------- melodic voices

// A small subtractive synth: an oscillator through a low-pass filter and an envelope, shaped by
// the note's General MIDI program family (piano and mallets decay, organ sustains, guitar and
// bass pluck, strings, brass, reeds, pipes, leads and pads sustain after a softer attack).
const synth = {
  played: 0, // notes started: a test reads it to know the melodic voice sounded

  // [oscillator, attack s, decay s, sustain level, release s, filter cutoff / pitch frequency]
  FAMILIES: [
    ["triangle", 0.004, 0.9, 0.0, 0.25, 8], // piano
    ["sine", 0.002, 0.6, 0.0, 0.3, 12], // chromatic percussion
    ["square", 0.01, 0.05, 0.8, 0.08, 6], // organ
    ["sawtooth", 0.003, 0.5, 0.05, 0.15, 5], // guitar
    ["triangle", 0.005, 0.4, 0.3, 0.1, 4], // bass
    ["sawtooth", 0.09, 0.2, 0.8, 0.3, 4], // strings
    ["sawtooth", 0.12, 0.2, 0.8, 0.35, 4], // ensemble
    ["sawtooth", 0.04, 0.15, 0.75, 0.15, 6], // brass
    ["square", 0.03, 0.15, 0.75, 0.12, 4], // reed
    ["sine", 0.05, 0.1, 0.85, 0.15, 10], // pipe
    ["square", 0.005, 0.1, 0.7, 0.1, 8], // synth lead
    ["sawtooth", 0.3, 0.3, 0.85, 0.6, 3], // synth pad
    ["triangle", 0.01, 0.4, 0.2, 0.2, 6], // synth effects
    ["triangle", 0.003, 0.5, 0.0, 0.2, 8], // ethnic
    ["sine", 0.002, 0.3, 0.0, 0.1, 10], // percussive
    ["sine", 0.02, 0.3, 0.3, 0.2, 6], // sound effects
  ],

  // One note at audio time t (0: now) for dur seconds, velocity 1-127, on General MIDI program.
  note(pitch, t, dur, velocity, program = 0) {
    const ctx = drums.ensure();
    t = Math.max(t, ctx.currentTime + 0.002);
    const [type, attack, decay, sustain, release, bright] = this.FAMILIES[(program >> 3) & 15];
    const f = 440 * 2 ** ((pitch - 69) / 12), peak = 0.28 * (velocity / 127);
    const o = drums.osc(type, f, t, dur + release + 0.05);
    const filter = drums.filter("lowpass", Math.min(16000, f * bright), 0.8);
    const g = ctx.createGain();
    const held = Math.max(peak * sustain, 0.0001);
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(Math.max(peak, 0.0002), t + attack);
    g.gain.exponentialRampToValueAtTime(held, t + attack + decay);
    g.gain.setValueAtTime(held, Math.max(t + dur, t + attack));
    g.gain.exponentialRampToValueAtTime(0.0001, Math.max(t + dur, t + attack) + release);
    o.connect(filter).connect(g).connect(drums.out);
    this.played++;
  },
};

// ---------------------------------------------------------------- transport

function tempo() {
  const v = +$("#tempo").value;
  return Math.min(240, Math.max(40, v || 120));
}
const stepSeconds = () => 60 / tempo() / 4;

// A lookahead scheduler: a timer queues the next steps on the audio clock, a frame loop draws.
// It plays a queue of entries one after another; an entry is one groove, melody, trio or
// performance, or several played together (the Mix: a groove and a melody), as long as the
// longest, the others looping. Music of several tracks plays every lane: a pitched one on the
// melodic voice of its program, the drums (a trio's grid, a performance's drum track) on the
// kit. An entry steps on the finest grid of its parts (a performance's 24 steps a quarter).
const player = {
  queue: [], index: 0, step: 0, nextTime: 0, timer: null, marks: [], endTime: null, frame: null,

  has(id) { return this.timer !== null && this.queue.some((entry) => entry.includes(id)); },

  start(entries) {
    entries = entries.map((e) => (Array.isArray(e) ? e : [e]).filter((id) => state.grooves.has(id)))
      .filter((e) => e.length);
    if (!entries.length) { toast("Nothing to play: select or generate a groove or a melody first."); return; }
    this.stop();
    const ctx = drums.ensure();
    Object.assign(this, { queue: entries, index: 0, step: 0, nextTime: ctx.currentTime + 0.08, marks: [], endTime: null });
    this.timer = setInterval(() => this.tick(), 25);
    this.tick();
    this.frame = requestAnimationFrame(() => this.draw());
    $("#play").classList.add("on");
  },

  stop() {
    clearInterval(this.timer);
    cancelAnimationFrame(this.frame);
    this.timer = null;
    midi.stop();
    $$(".groove-card.playing").forEach((c) => c.classList.remove("playing"));
    $("#play").classList.remove("on");
  },

  // What part g of an entry plays at its step `step` (of its own grid, sd seconds long).
  play(g, step, time, sd) {
    for (const [part, lane] of lanesOf(g)) {
      for (const n of lane.notes) {
        if (n.start !== step) continue;
        const dur = (n.end - n.start) * sd;
        if (lane.drum) {
          drums.hit(drumRow(n.pitch), time, n.velocity / 127);
          midi.drumNote(n.pitch, time, dur, n.velocity);
          continue;
        }
        synth.note(n.pitch, time, dur, n.velocity, lane.program);
        midi.melodyNote(n.pitch, time, dur, n.velocity, lane.program, lane.channel ?? part);
      }
    }
    if (!g.hits) return;
    for (let r = 0; r < g.hits.length; r++) {
      if (!g.hits[r][step]) continue;
      const t = time - (g.offsets[r][step] / 2) * sd, v = g.velocities[r][step];
      drums.hit(r, t, v);
      midi.hit(r, t, v, sd);
    }
  },

  tick() {
    const ctx = drums.ctx;
    const horizon = ctx.currentTime + 0.15;
    while (this.endTime === null) {
      const parts = (this.queue[this.index] || []).map((id) => state.grooves.get(id)).filter(Boolean);
      if (!parts.length) { this.endTime = this.nextTime; break; }
      const spq = Math.max(...parts.map(perQuarter));
      const sd = stepSeconds() * (4 / spq); // a step of the entry's finest grid
      if (this.nextTime - sd / 2 > horizon) break; // notes may be played up to half a step early
      for (const g of parts) {
        const k = spq / perQuarter(g); // the entry's steps in one of g's
        if (this.step % k === 0) this.play(g, (this.step / k) % g.steps, this.nextTime, sd * k);
      }
      this.marks.push({ ids: parts.map((g) => g.id), step: this.step, time: this.nextTime, sd, spq });
      this.nextTime += sd;
      if (++this.step >= Math.max(...parts.map((g) => g.steps * (spq / perQuarter(g))))) {
        this.step = 0;
        if (++this.index >= this.queue.length) {
          if ($("#loop").checked) this.index = 0;
          else this.endTime = this.nextTime;
        }
      }
    }
    if (this.endTime !== null && ctx.currentTime > this.endTime + 0.3) this.stop();
  },

  draw() {
    const now = drums.ctx.currentTime;
    while (this.marks.length > 1 && this.marks[1].time <= now) this.marks.shift();
    const m = this.marks[0];
    if (m && m.time <= now) {
      const els = m.ids.map((id) => state.grooves.get(id)).filter((g) => g && g.el);
      $$(".groove-card.playing").forEach((c) => !els.some((g) => g.el === c) && c.classList.remove("playing"));
      for (const g of els) {
        g.el.classList.add("playing");
        const k = m.spq / perQuarter(g), frac = Math.min(1, (now - m.time) / m.sd);
        const at = ((m.step / k) % g.steps) + frac / k; // in g's steps
        for (const area of $$(".grid, .roll", g.el)) { // each lane of a card has one
          $(".playhead", area).style.left = `${(at * area.clientWidth) / g.steps}px`;
        }
      }
    }
    if (this.timer !== null) this.frame = requestAnimationFrame(() => this.draw());
  },
};

// ---------------------------------------------------------------- tapping (Drumify input)

const tapper = {
  recording: false, t0: 0, taps: [], steps: 32, sd: 0.125, raf: null,

  key(e) {
    if (e.repeat || ["Shift", "Control", "Alt", "Meta", "Tab"].includes(e.key)) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.key === "Escape") { this.finish(true); return; }
    this.tap();
  },

  tap() {
    const ctx = drums.ensure();
    const now = ctx.currentTime;
    drums.hit(TAP_ROW, now, 0.7);
    const pad = $("#tap-pad");
    pad.classList.add("flash");
    setTimeout(() => pad.classList.remove("flash"), 80);
    if (!this.recording) this.begin(now);
    this.taps.push(now - this.t0);
  },

  begin(now) {
    const t = state.info && state.info.tools.drumify;
    this.steps = (t && t.steps) || 32;
    this.sd = stepSeconds();
    Object.assign(this, { recording: true, t0: now, taps: [] });
    $("#tap-pad").classList.add("recording");
    // A metronome on the beats after the first tap keeps the player in time.
    for (let s = 4; s < this.steps; s += 4) drums.click(now + s * this.sd, s % 16 === 0);
    const total = this.steps * this.sd;
    const loop = () => {
      const p = (drums.ctx.currentTime - this.t0) / total;
      $("#tap-progress").style.width = `${Math.min(100, p * 100)}%`;
      $("#tap-status").textContent = `Recording… ${this.taps.length} taps`;
      if (p >= 1) this.finish(false);
      else this.raf = requestAnimationFrame(loop);
    };
    this.raf = requestAnimationFrame(loop);
  },

  finish(cancelled) {
    cancelAnimationFrame(this.raf);
    const was = this.recording;
    this.recording = false;
    $("#tap-pad").classList.remove("recording");
    $("#tap-progress").style.width = "0";
    $("#tap-status").textContent = "Tap any key, or click here";
    if (!was || cancelled || !this.taps.length) return;
    const g = emptyGroove(this.steps, "Taps");
    for (const t of this.taps) {
      const pos = t / this.sd, s = Math.round(pos);
      if (s >= this.steps) continue;
      g.hits[TAP_ROW][s] = 1;
      g.velocities[TAP_ROW][s] = 0.7;
      g.offsets[TAP_ROW][s] = Math.max(-1, Math.min(1, (s - pos) * 2));
    }
    addGroup("Taps", `${this.taps.length} taps`, [g]);
    select(g.id);
    runTool($("#drumify-run"), runners["drumify-drums"]);
  },
};
