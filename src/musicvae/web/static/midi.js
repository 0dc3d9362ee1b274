// MusicVAE Studio: Web MIDI. The playing groove goes out on channel 10 and the playing melody
// on the chosen melody channel (a trio: its drums on 10, its melody on the melody channel and
// its bass on the bass channel; a performance: its drums on 10, its first pitched track on the
// melody channel and each next one on the channel after, skipping 10), in step with the audio
// transport; an input can run the transport from MIDI clock and tap rhythms for Drumify. Loaded
// after app.js ($, state, toast) and audio.js (drums, player, tapper); player calls midi.hit for
// every hit of a grid, midi.drumNote for every note of a drum track and midi.melodyNote for
// every pitched note it schedules, and midi.stop when it stops.
"use strict";

const NOTE_ON = 0x99, NOTE_OFF = 0x89; // channel 10, General MIDI's drum channel
const DRUM_CHANNEL = 10;
const MELODY_NOTE_ON = 0x90, MELODY_NOTE_OFF = 0x80, PROGRAM_CHANGE = 0xc0, CONTROL = 0xb0;
const ALL_NOTES_OFF = 123;
const CLOCK = 0xf8, START = 0xfa, CONTINUE = 0xfb, STOP = 0xfc;
const CLOCKS_PER_QUARTER = 24;

const midi = {
  access: null, out: null, in: null, toPerf: null, clocks: [], programs: {}, used: new Set(),

  init() {
    const channels = [...Array(16).keys()].map((c) => c + 1).filter((c) => c !== DRUM_CHANNEL);
    $("#midi-channel").replaceChildren(...channels.map((c) => new Option(`${c}`, c)));
    $("#midi-bass-channel").replaceChildren(...channels.map((c) => new Option(`${c}`, c)));
    $("#midi-bass-channel").value = 2;
    $("#midi-connect").addEventListener("click", () => this.connect());
    $("#midi-out").addEventListener("change", () => this.choose());
    $("#midi-in").addEventListener("change", () => this.choose());
    if (!navigator.requestMIDIAccess) { this.connect(); return; }
    // Asking shows a permission prompt, so it waits for the button unless access was granted before.
    navigator.permissions?.query({ name: "midi" })
      .then((p) => { if (p.state === "granted") this.connect(); }).catch(() => {});
  },

  note(text) {
    $("#midi-note").textContent = text;
    $("#midi-note").hidden = !text;
  },

  async connect() {
    const off = "MIDI out, clock and taps are off; everything else works.";
    if (!navigator.requestMIDIAccess) {
      $("#midi-connect").hidden = true;
      this.note(`This browser has no Web MIDI (Chrome, Edge and Opera have it). ${off}`);
      return;
    }
    try {
      this.access = await navigator.requestMIDIAccess();
    } catch (err) {
      this.note(`MIDI access was refused (${err.message || err.name}). ${off}`);
      return;
    }
    this.note("");
    $("#midi-connect").hidden = true;
    $("#midi-ports").hidden = false;
    this.access.onstatechange = () => this.listPorts();
    this.listPorts();
  },

  // Fills both choosers from the connected ports, keeping each choice while its port is there.
  listPorts() {
    for (const [id, ports] of [["#midi-out", this.access.outputs], ["#midi-in", this.access.inputs]]) {
      const select = $(id), was = select.value;
      select.replaceChildren(new Option("none", ""), ...[...ports.values()].map((p) => new Option(p.name, p.id)));
      select.value = was;
      if (select.selectedIndex < 0) select.selectedIndex = 0;
    }
    this.choose();
  },

  choose() {
    this.out = this.access.outputs.get($("#midi-out").value) || null;
    const input = this.access.inputs.get($("#midi-in").value) || null;
    if (this.in && this.in !== input) this.in.onmidimessage = null;
    this.in = input;
    if (input) input.onmidimessage = (e) => this.receive(e);
  },

  // ---------------------------------------------------------------- out: the playing groove

  // An audio-clock time (s) as performance.now() time (ms), the clock MIDIOutput.send takes.
  // The mapping is taken once a playback, at the audio's output (what is heard now), so the
  // notes keep the audio's spacing exactly.
  perfTime(t) {
    if (this.toPerf === null) {
      const ctx = drums.ctx, ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : {};
      this.toPerf = ts.performanceTime
        ? ts.performanceTime - ts.contextTime * 1000
        : performance.now() - ctx.currentTime * 1000;
    }
    return t * 1000 + this.toPerf;
  },

  // One hit at audio time t (micro-timing included), velocity 0-1; note-off half a step later.
  hit(row, t, velocity, stepSeconds) {
    const pitch = state.info && state.info.drum_pitches[row];
    if (!this.out || pitch === undefined) return;
    const v = Math.max(1, Math.min(127, Math.round((velocity > 0 ? velocity : 0.7) * 127)));
    const at = this.perfTime(t);
    this.out.send([NOTE_ON, pitch, v], at);
    this.out.send([NOTE_OFF, pitch, 0], at + stepSeconds * 500);
  },

  // One note of a drum track at audio time t for dur seconds, velocity 1-127, on channel 10.
  drumNote(pitch, t, dur, velocity) {
    if (!this.out) return;
    const at = this.perfTime(t);
    this.out.send([NOTE_ON, pitch, Math.max(1, Math.min(127, velocity))], at);
    this.out.send([NOTE_OFF, pitch, 0], at + dur * 1000);
  },

  // The channel (0-15) of a melody's or a trio's melody, or of a trio's bass, or of the nth
  // pitched track of a performance (n from 0: the melody channel, then the ones after it,
  // channel 10 skipped): the low nibble of the status bytes of note-on, note-off, program
  // change and control change.
  channel(part = "melody") {
    if (typeof part === "number") {
      const others = [...Array(16).keys()].filter((c) => c !== DRUM_CHANNEL - 1);
      return others[(others.indexOf(this.channel()) + part) % others.length];
    }
    const id = part === "bass" ? "#midi-bass-channel" : "#midi-channel";
    return (+$(id).value || (part === "bass" ? 2 : 1)) - 1;
  },

  // One note at audio time t for dur seconds, velocity 1-127, on the channel of its part (a
  // melody, a trio's melody or its bass); the channel is first set to the note's General MIDI
  // program.
  melodyNote(pitch, t, dur, velocity, program, part = "melody") {
    if (!this.out) return;
    const ch = this.channel(part), at = this.perfTime(t);
    this.used.add(ch);
    if (program !== this.programs[ch]) {
      this.out.send([PROGRAM_CHANGE | ch, program & 127], at);
      this.programs[ch] = program;
    }
    this.out.send([MELODY_NOTE_ON | ch, pitch, Math.max(1, Math.min(127, velocity))], at);
    this.out.send([MELODY_NOTE_OFF | ch, pitch, 0], at + dur * 1000);
  },

  stop() {
    this.toPerf = null;
    this.programs = {};
    if (!this.out || !this.out.clear) return;
    // Drop the notes queued ahead, and end any whose note-off was among them.
    this.out.clear();
    for (const pitch of (state.info && state.info.drum_pitches) || []) this.out.send([NOTE_OFF, pitch, 0]);
    this.out.send([CONTROL | this.channel(), ALL_NOTES_OFF, 0]);
    if (!$("#midi-bass-row").hidden) this.out.send([CONTROL | this.channel("bass"), ALL_NOTES_OFF, 0]);
    // A performance's other tracks, and the drum track's notes whose note-off was dropped.
    for (const ch of this.used) {
      if (ch !== this.channel() && ch !== this.channel("bass")) this.out.send([CONTROL | ch, ALL_NOTES_OFF, 0]);
    }
    this.used.clear();
    this.out.send([CONTROL | (DRUM_CHANNEL - 1), ALL_NOTES_OFF, 0]);
  },

  // ---------------------------------------------------------------- in: clock and taps

  receive(e) {
    const [status, , velocity] = e.data;
    if ((status & 0xf0) === 0x90 && velocity > 0) {
      if (toolRow(state.tool)?.action === "drumify") tapper.tap();
      return;
    }
    if (!$("#midi-clock").checked) return;
    if (status === CLOCK) this.clock(e.timeStamp ?? performance.now());
    else if (status === START || status === CONTINUE) {
      this.clocks = [];
      if (player.timer === null) $("#play").click();
    } else if (status === STOP) player.stop();
  },

  // The tempo from the mean clock interval over the last quarter note (24 clocks).
  clock(ms) {
    const c = this.clocks;
    if (c.length && ms - c[c.length - 1] > 500) c.length = 0; // a pause: the clock restarted
    c.push(ms);
    if (c.length > CLOCKS_PER_QUARTER + 1) c.shift();
    if (c.length < 7) return;
    const interval = (c[c.length - 1] - c[0]) / (c.length - 1);
    const bpm = Math.round(60000 / (interval * CLOCKS_PER_QUARTER) * 10) / 10;
    if (bpm >= 40 && bpm <= 240) $("#tempo").value = bpm;
  },
};

midi.init();
