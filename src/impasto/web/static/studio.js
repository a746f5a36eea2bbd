// impasto studio: the page. Plain JavaScript, no build step, no library; it talks only to
// the JSON API of this server (documented in docs/studio.md) and loads nothing from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  presets: {}, content: null, contents: [], styles: [], mask: null, maskPainted: false, again: null, againInputs: null,
  current: null, source: null, series: {}, scaleStarts: [], lastScale: null, preview: 0, compare: [],
  jobs: [], refreshing: false,
};
const COLORS = ["#b5432c", "#2c6fb5", "#3c9a4a", "#c58a1a", "#7b3fb0", "#1a9aa0", "#d0508a", "#5a5a5a", "#8a6d3b"];

// ---------- small helpers
function say(text) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
}
function clock(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds), m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}
async function api(method, path, body) {
  const response = await fetch(path, { method, body, credentials: "same-origin" });
  let data = null;
  if ((response.headers.get("content-type") || "").includes("json")) data = await response.json();
  if (!response.ok) throw new Error((data && data.error) || `${method} ${path}: HTTP ${response.status}`);
  return data;
}
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

// ---------- pictures
// Several photos at once are a batch: one job each, same paintings and settings, their
// results in the gallery.
function setContent(files) {
  state.contents = [...files];
  state.content = state.contents[0];
  if (state.againInputs) state.againInputs.content = false;
  const thumb = $("content-thumb");
  thumb.src = URL.createObjectURL(state.content);
  thumb.hidden = false;
  const n = state.contents.length;
  $("content-drop").querySelector("span").textContent = n > 1
    ? `${n} photos, one picture each: ${state.contents.map((f) => f.name).join(", ")}` : state.content.name;
  clearMask();
  ready();
}
function addStyles(files) {
  if (state.againInputs && state.againInputs.styles) { state.styles = []; state.againInputs.styles = false; }
  for (const file of files) state.styles.push({ file, name: file.name, weight: 1, url: URL.createObjectURL(file) });
  drawStyles();
  ready();
}
function drawStyles() {
  const list = $("styles");
  list.replaceChildren();
  state.styles.forEach((s, k) => {
    const slider = el("input", { type: "range", min: 0, max: 100, value: Math.round(s.weight * 50),
      title: "blend weight", oninput: (e) => { s.weight = e.target.value / 50; } });
    slider.setAttribute("aria-label", `blend weight of ${s.name}`);
    const remove = el("button", { type: "button", textContent: "×", title: "remove",
      onclick: () => { state.styles.splice(k, 1); drawStyles(); clearMask(); ready(); } });
    const label = el("div", {}, s.name);
    if (state.styles.length > 1) label.append(el("br"), slider);
    list.append(el("li", {}, el("img", { src: s.url, alt: "" }), label, remove));
  });
  if (!$("mask-editor").hidden) makeBrushes();
}
function ready() {
  $("paint").disabled = !(state.content || (state.againInputs && state.againInputs.content))
    || state.styles.length === 0;
}
function dropZone(zone, input, take) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type);
    if (files.length) take(files);
  });
  input.addEventListener("change", () => { if (input.files.length) take([...input.files]); input.value = ""; });
}
async function demoPair() {
  try {
    const [photo, painting] = await Promise.all(["content", "style"].map(async (which) => {
      const response = await fetch(`/api/demo/${which}`);
      if (!response.ok) throw new Error((await response.json()).error);
      const blob = await response.blob();
      return new File([blob], which === "content" ? "grace_hopper.jpg" : "demo_painting.png", { type: blob.type });
    }));
    state.again = null; state.againInputs = null;
    state.styles = [];
    setContent([photo]);
    addStyles([painting]);
    say("");
  } catch (err) { say(err.message); }
}

// ---------- the mask: uploaded, or painted with a brush per style over the photo
function maskPalette() {
  const n = state.styles.length;
  if (n <= 1) return [{ name: "no style (photo only)", color: "#000000" }, { name: "the painting", color: "#ffffff" }];
  return state.styles.map((s, k) => {
    const v = Math.round((255 * k) / (n - 1)).toString(16).padStart(2, "0");
    return { name: s.name, color: `#${v}${v}${v}` }; // darkest = the first painting
  });
}
let brush = null;
function makeBrushes() {
  const box = $("brushes");
  box.replaceChildren();
  const palette = maskPalette();
  if (!palette.some((p) => p.color === brush)) brush = palette[palette.length - 1].color;
  for (const p of palette) {
    const i = el("i");
    i.style.background = p.color;
    const b = el("button", { type: "button", class: p.color === brush ? "on" : "",
      onclick: () => { brush = p.color; makeBrushes(); } }, i, p.name);
    box.append(b);
  }
}
function openMaskEditor() {
  const photo = state.content ? URL.createObjectURL(state.content)
    : state.againInputs && state.againInputs.content ? `/api/jobs/${state.again}/inputs/content` : null;
  if (!photo) { say("mask: choose a photo first"); return; }
  if (!state.styles.length) { say("mask: choose the paintings first (a brush per painting)"); return; }
  const img = $("mask-photo"), canvas = $("mask-canvas");
  img.onload = () => {
    const f = Math.min(1, 1024 / Math.max(img.naturalWidth, img.naturalHeight));
    canvas.width = Math.round(img.naturalWidth * f);
    canvas.height = Math.round(img.naturalHeight * f);
    const g = canvas.getContext("2d");
    g.fillStyle = maskPalette()[state.styles.length <= 1 ? 1 : 0].color;
    g.fillRect(0, 0, canvas.width, canvas.height);
  };
  img.src = photo;
  $("mask-editor").hidden = false;
  $("mask-clear").hidden = false;
  state.mask = null;
  state.maskPainted = true;
  $("mask-name").textContent = "painted over the photo";
  makeBrushes();
}
function clearMask() {
  state.mask = null;
  state.maskPainted = false;
  $("mask-editor").hidden = true;
  $("mask-clear").hidden = true;
  $("mask-name").textContent = "";
}
function paintStroke() {
  const canvas = $("mask-canvas");
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  const draw = (e) => {
    if (!last) return;
    const g = canvas.getContext("2d"), p = at(e);
    g.strokeStyle = brush;
    g.lineWidth = $("brush-size").value * (canvas.width / canvas.getBoundingClientRect().width);
    g.lineCap = "round";
    g.lineJoin = "round";
    g.beginPath();
    g.moveTo(...last);
    g.lineTo(...p);
    g.stroke();
    last = p;
  };
  canvas.addEventListener("pointerdown", (e) => { canvas.setPointerCapture(e.pointerId); last = at(e); draw(e); });
  canvas.addEventListener("pointermove", draw);
  canvas.addEventListener("pointerup", () => { last = null; });
}
function maskBlob() {
  return new Promise((resolve) => $("mask-canvas").toBlob(resolve, "image/png"));
}

// ---------- a job: submit, follow, stop
function recipe() {
  const r = { preset: $("preset").value };
  const size = parseInt($("size").value, 10);
  if (size) r.size = size;
  for (const name of ["content_weight", "style_weight"]) {
    const v = $(name).value;
    if (v !== "") r[name] = parseFloat(v);
  }
  if ($("colors").value) r.colors = $("colors").value;
  if ($("seed").value !== "") r.seed = parseInt($("seed").value, 10);
  if (state.styles.length > 1) r.style_weights = state.styles.map((s) => s.weight);
  return r;
}
async function paint() {
  const photos = state.content ? state.contents : [null];
  if (photos.length > 1 && (state.mask || state.maskPainted)) {
    say("mask: a mask is drawn over one photo; choose one photo to use it");
    return;
  }
  $("paint").disabled = true;
  try {
    let first = null;
    for (const photo of photos) {
      const form = new FormData();
      if (photo) form.append("content", photo, photo.name);
      for (const s of state.styles) if (s.file) form.append("style", s.file, s.file.name);
      if (state.mask) form.append("mask", state.mask, state.mask.name);
      else if (state.maskPainted) form.append("mask", await maskBlob(), "painted-mask.png");
      if (state.again) form.append("again", state.again);
      form.append("recipe", JSON.stringify(recipe()));
      const { id } = await api("POST", "/api/jobs", form);
      first = first || id;
    }
    say(photos.length > 1 ? `${photos.length} pictures queued; each one is in the gallery when it is done` : "");
    show(first);
  } catch (err) {
    say(err.message);
  } finally {
    ready();
    refresh();
  }
}
function resetLive() {
  state.series = {};
  state.scaleStarts = [];
  state.lastScale = null;
  state.preview = 0;
  state.last = null;
  drawChart();
  for (const id of ["download-png", "download-jpg", "explain"]) $(id).hidden = true;
  $("bar").hidden = true;
  $("status").textContent = "";
}
function show(id) {
  if (state.source) state.source.close();
  state.current = id;
  resetLive();
  const preview = $("preview");
  preview.classList.remove("shown");
  $("idle").hidden = false;
  $("idle").textContent = "Waiting for the first picture…";
  $("stop").disabled = false;
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.source = source;
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "progress") progress(id, event);
    else finish(id, event, source);
  };
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) $("stop").disabled = true; };
  markCurrent();
}
function loadPreview(url) {
  const next = new Image();
  next.onload = () => {
    const preview = $("preview");
    preview.src = next.src;
    preview.classList.add("shown");
    preview.dataset.count = String((parseInt(preview.dataset.count || "0", 10) || 0) + 1);
    $("idle").hidden = true;
  };
  next.src = url;
}
function progress(id, e) {
  if (id !== state.current) return;
  for (const [key, value] of Object.entries(e.terms)) {
    (state.series[key] = state.series[key] || []).push([e.step, value]);
  }
  if (state.lastScale !== null && e.scale !== state.lastScale) state.scaleStarts.push(e.step);
  state.lastScale = e.scale;
  state.last = e;
  if (e.preview && e.preview !== state.preview) {
    state.preview = e.preview;
    loadPreview(`/api/jobs/${id}/preview.jpg?n=${e.preview}`);
  }
  scheduleChart();
}
function drawStatus() {
  const e = state.last;
  if (!e) return;
  $("status").textContent = `scale ${e.scale + 1}/${e.scales} · step ${e.step}/${e.total_steps} · `
    + `${e.size[1]}×${e.size[0]} px · ${clock(e.elapsed)} elapsed · ETA ${clock(e.eta)} · loss ${e.loss.toPrecision(4)}`;
  $("bar").hidden = false;
  $("bar").value = e.fraction;
}
function finish(id, e, source) {
  source.close();
  if (id !== state.current) return;
  state.source = null;
  drawChart();
  $("stop").disabled = true;
  $("bar").hidden = true;
  if (e.type === "done") {
    loadPreview(`/api/jobs/${id}/preview.jpg?final=1`);
    const png = $("download-png"), jpg = $("download-jpg"), explain = $("explain");
    png.href = `/api/jobs/${id}/result.png`; png.download = `impasto-${id}.png`;
    jpg.href = `/api/jobs/${id}/result.jpg`; jpg.download = `impasto-${id}.jpg`;
    explain.href = `/api/jobs/${id}/explain`;
    png.hidden = jpg.hidden = explain.hidden = false;
    const last = state.last;
    $("status").textContent = last
      ? `done · ${last.step} of ${last.total_steps} steps · ${last.size[1]}×${last.size[0]} px · ${clock(last.elapsed)}`
      : "done";
  } else if (e.type === "failed") {
    $("idle").hidden = false;
    $("idle").textContent = "";
    $("status").textContent = `failed: ${e.error}`;
    say(e.error);
  } else {
    $("status").textContent = "cancelled";
  }
  refresh();
}
async function stop() {
  if (!state.current) return;
  try { await api("POST", `/api/jobs/${state.current}/stop`); } catch (err) { say(err.message); }
}

// ---------- the chart of the loss terms per layer (log scale)
// The status and the chart are redrawn at most twice a second, not at every step: on a
// 2-core laptop the page shares the CPU with the run.
let chartPending = false;
function scheduleChart() {
  if (chartPending) return;
  chartPending = true;
  setTimeout(() => requestAnimationFrame(() => {
    chartPending = false;
    if (state.source) { drawStatus(); drawChart(); }
  }), 500);
}
function drawChart() {
  const canvas = $("chart"), g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 52, R = 8, T = 8, B = 22;
  g.clearRect(0, 0, W, H);
  const keys = Object.keys(state.series);
  const legend = $("legend");
  legend.replaceChildren();
  if (!keys.length) return;
  let lo = Infinity, hi = -Infinity, last = 1;
  for (const k of keys) for (const [s, v] of state.series[k]) {
    if (v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    last = Math.max(last, s);
  }
  if (!isFinite(lo)) return;
  const a = Math.floor(Math.log10(lo)), b = Math.max(a + 1, Math.ceil(Math.log10(hi)));
  const x = (s) => L + ((s - 1) / Math.max(1, last - 1)) * (W - L - R);
  const y = (v) => T + (1 - (Math.log10(v) - a) / (b - a)) * (H - T - B);
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#777";
  g.strokeStyle = "#eee";
  for (let p = a; p <= b; p++) {
    g.beginPath(); g.moveTo(L, y(10 ** p)); g.lineTo(W - R, y(10 ** p)); g.stroke();
    g.fillText(`1e${p}`, 4, y(10 ** p) + 4);
  }
  g.fillText("step 1", L, H - 6);
  g.fillText(`step ${last}`, W - R - 56, H - 6);
  g.setLineDash([4, 4]);
  g.strokeStyle = "#bbb";
  for (const s of state.scaleStarts) { g.beginPath(); g.moveTo(x(s), T); g.lineTo(x(s), H - B); g.stroke(); }
  g.setLineDash([]);
  // A layer's histogram term takes its style term's colour, dashed.
  const solid = keys.filter((k) => !k.startsWith("histogram."));
  keys.forEach((k) => {
    const histogram = k.startsWith("histogram.");
    const twin = histogram ? solid.indexOf(`style.${k.slice("histogram.".length)}`) : -1;
    const slot = histogram ? (twin >= 0 ? twin : keys.indexOf(k)) : solid.indexOf(k);
    const color = COLORS[slot % COLORS.length];
    g.strokeStyle = color;
    g.lineWidth = 1.5;
    g.setLineDash(histogram ? [5, 3] : []);
    g.beginPath();
    let started = false;
    for (const [s, v] of state.series[k]) {
      if (!(v > 0)) continue;
      if (started) g.lineTo(x(s), y(v)); else { g.moveTo(x(s), y(v)); started = true; }
    }
    g.stroke();
    const swatch = el("i");
    swatch.style.background = histogram ? `repeating-linear-gradient(90deg, ${color} 0 5px, transparent 5px 8px)` : color;
    legend.append(el("li", {}, swatch, k));
  });
  g.setLineDash([]);
}

// ---------- queue and gallery
function describe(job) {
  const r = job.request || {};
  const bits = r.print ? [`print ${r.print} at ${r.dpi} dpi`, `${job.recipe.size} px`]
    : [r.preset || "default", `${job.recipe.size || "?"} px`];
  if (r.colors) bits.push(`colours: ${r.colors}`);
  if (job.inputs.mask) bits.push("mask");
  return bits.join(" · ");
}
function stateText(job) {
  if (job.state === "queued") return job.position === 0 ? "queued: next" : `queued: ${job.position + 1} in line`;
  const on = job.worker ? ` on ${job.worker}` : "";
  if (job.state === "running") return (job.progress ? `running ${Math.round(100 * job.progress.fraction)}%` : "starting") + on;
  if (job.state === "done") return `done in ${clock(job.seconds)}${on}`;
  if (job.state === "failed") return `failed: ${job.error}`;
  return job.state;
}
function card(job) {
  const img = el("img", { alt: `result of job ${job.id}`, loading: "lazy", onclick: () => show(job.id) });
  if (job.state === "done") img.src = `/api/jobs/${job.id}/preview.jpg?final=1`;
  else if (job.state === "running" && job.progress && job.progress.preview) img.src = `/api/jobs/${job.id}/preview.jpg?n=${job.progress.preview}`;
  const actions = el("div", { class: "actions" });
  if (job.state === "done") {
    actions.append(el("button", { type: "button", textContent: "show", onclick: () => show(job.id) }));
    const box = el("input", { type: "checkbox", checked: state.compare.includes(job.id),
      onchange: (e) => toggleCompare(job.id, e.target.checked) });
    actions.append(el("label", {}, box, " compare"));
    actions.append(printer(job));
  }
  actions.append(el("button", { type: "button", textContent: "again with…", onclick: () => again(job) }));
  const finished = ["done", "failed", "cancelled"].includes(job.state);
  actions.append(el("button", { type: "button", textContent: finished ? "remove" : "cancel",
    onclick: async () => {
      try { await api("DELETE", `/api/jobs/${job.id}`); } catch (err) { say(err.message); }
      state.compare = state.compare.filter((c) => c !== job.id);
      refresh();
    } }));
  const names = `${job.inputs.content} + ${job.inputs.styles.join(", ")}`;
  return el("li", { class: `${job.state}${job.id === state.current ? " current" : ""}`, id: `job-${job.id}` },
    img, el("div", { class: "state", textContent: stateText(job) }), el("div", { textContent: describe(job) }),
    el("div", { class: "hint", textContent: names }), actions);
}
// "print…": the picture continued up to a paper size, keeping its look (the CLI's
// --print PAPER --dpi DPI --from RESULT); the print is a job of its own in the gallery.
const PAPERS = ["A6", "A5", "A4", "A3", "letter"];
function printer(job) {
  const paper = el("select", { ariaLabel: "paper" },
    ...PAPERS.map((name) => el("option", { value: name, textContent: name, selected: name === "A4" })));
  const dpi = el("input", { type: "number", min: 10, max: 2400, value: 300, ariaLabel: "dpi" });
  const go = el("button", { type: "button", textContent: "print", onclick: async () => {
    const form = new FormData();
    form.append("paper", paper.value);
    form.append("dpi", dpi.value);
    try {
      const { id } = await api("POST", `/api/jobs/${job.id}/print`, form);
      say("");
      await refresh();
      show(id);
    } catch (err) {
      say(err.message);
    }
  } });
  return el("details", { class: "print" }, el("summary", { textContent: "print…" }),
    el("div", { class: "row" }, paper, dpi, " dpi ", go));
}
function markCurrent() {
  for (const li of $("gallery").children) li.classList.toggle("current", li.id === `job-${state.current}`);
}
// Cards are remade only when a job's state changes; a running job's card gets its new
// text, and a new thumbnail every few previews (the page must not take the run's CPU).
const cards = new Map();
function signature(job) {
  return [job.state, job.position, job.error, job.seconds, state.compare.includes(job.id)].join("|");
}
function drawGallery(jobs) {
  const list = $("gallery"), wanted = jobs.slice().reverse(), keep = new Set(wanted.map((j) => j.id));
  for (const [id, c] of cards) if (!keep.has(id)) { c.li.remove(); cards.delete(id); }
  let previous = null;
  for (const job of wanted) {
    let c = cards.get(job.id);
    const sig = signature(job);
    if (!c || c.sig !== sig) {
      const li = card(job);
      if (c) c.li.replaceWith(li);
      c = { li, sig, preview: job.progress ? job.progress.preview : 0 };
      cards.set(job.id, c);
    } else if (job.state === "running" && job.progress) {
      c.li.querySelector(".state").textContent = stateText(job);
      if (job.progress.preview - c.preview >= 5) {
        c.preview = job.progress.preview;
        c.li.querySelector("img").src = `/api/jobs/${job.id}/preview.jpg?n=${c.preview}`;
      }
    }
    const next = previous ? previous.nextSibling : list.firstChild;
    if (c.li !== next) list.insertBefore(c.li, next);
    previous = c.li;
  }
  markCurrent();
}
async function refresh() {
  if (state.refreshing) return;
  state.refreshing = true;
  try {
    const { jobs } = await api("GET", "/api/jobs");
    state.jobs = jobs;
    drawGallery(jobs);
  } catch (err) {
    say(err.message);
  } finally {
    state.refreshing = false;
  }
}
function again(job) {
  const r = job.request || {};
  $("preset").value = r.preset || "default";
  $("size").value = job.recipe.size || "";
  for (const name of ["content_weight", "style_weight", "seed"]) $(name).value = r[name] ?? "";
  $("colors").value = r.colors || "";
  $("more").open = ["content_weight", "style_weight", "seed", "colors"].some((k) => k in r) || !!job.inputs.mask;
  state.again = job.id;
  state.againInputs = { content: true, styles: true };
  state.content = null;
  state.contents = [];
  const thumb = $("content-thumb");
  thumb.src = `/api/jobs/${job.id}/inputs/content`;
  thumb.hidden = false;
  $("content-drop").querySelector("span").textContent = job.inputs.content;
  const weights = r.style_weights || [];
  state.styles = job.inputs.styles.map((name, k) => ({ file: null, name, weight: weights[k] ?? 1,
    url: `/api/jobs/${job.id}/inputs/style-${k + 1}` }));
  drawStyles();
  clearMask();
  if (job.inputs.mask) $("mask-name").textContent = `the mask of that job (${job.inputs.mask})`;
  ready();
  $("setup").scrollIntoView({ behavior: "smooth" });
}
function toggleCompare(id, on) {
  state.compare = state.compare.filter((c) => c !== id);
  if (on) state.compare.push(id);
  state.compare = state.compare.slice(-2);
  const box = $("compare");
  if (state.compare.length === 2) {
    $("compare-a").src = `/api/jobs/${state.compare[0]}/preview.jpg?final=1`;
    $("compare-b").src = `/api/jobs/${state.compare[1]}/preview.jpg?final=1`;
    box.hidden = false;
    fitCompare();
  } else box.hidden = true;
  refresh();
}
function fitCompare() {
  const a = $("compare-a"), b = $("compare-b");
  b.style.width = `${a.clientWidth}px`;
  b.style.height = `${a.clientHeight}px`;
  $("compare-top").style.width = `${$("compare-slider").value}%`;
}

// ---------- start
async function start() {
  dropZone($("content-drop"), $("content"), (files) => setContent(files));
  dropZone($("style-drop"), $("style"), addStyles);
  $("demo").addEventListener("click", demoPair);
  $("paint").addEventListener("click", paint);
  $("stop").addEventListener("click", stop);
  $("mask-paint").addEventListener("click", openMaskEditor);
  $("mask-clear").addEventListener("click", clearMask);
  $("mask-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (!file) return;
    clearMask();
    state.mask = file;
    $("mask-clear").hidden = false;
    $("mask-name").textContent = file.name;
    e.target.value = "";
  });
  $("compare-slider").addEventListener("input", fitCompare);
  $("compare-a").addEventListener("load", fitCompare);
  $("compare-close").addEventListener("click", () => { state.compare = []; $("compare").hidden = true; refresh(); });
  window.addEventListener("resize", fitCompare);
  paintStroke();
  try {
    const { presets } = await api("GET", "/api/presets");
    state.presets = presets;
    $("preset").replaceChildren(...Object.keys(presets).map((name) => el("option", { value: name, textContent: name })));
    $("preset").value = "default";
  } catch (err) { say(err.message); }
  await refresh();
  const running = state.jobs.find((j) => j.state === "running") || state.jobs.find((j) => j.state === "queued");
  if (running) show(running.id);
  setInterval(() => { if (state.jobs.some((j) => !["done", "failed", "cancelled"].includes(j.state))) refresh(); }, 2000);
}
document.addEventListener("DOMContentLoaded", start);
