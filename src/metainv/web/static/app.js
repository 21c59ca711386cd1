// metainv design studio: a thin page over the JSON endpoints of metainv.web.app.
// Every number shown comes from the server (the metainv library); this file only draws.
"use strict";

const $ = (id) => document.getElementById(id);
const LABELS = ["11", "22", "33", "23", "13", "12"];
const MAX_UPLOAD = 256 * 1024;
let INFO = null;
let currentJob = null;
let jobEvents = null;
let lastTarget = null;
let gridName = "grid";

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data;
  try { data = await response.json(); } catch (e) { data = { error: `server answered ${response.status}` }; }
  if (!response.ok || data.error) throw new Error(data.error || `server answered ${response.status}`);
  return data;
}

function fmt(x, digits = 4) {
  return x === null || x === undefined ? "-" : Number(x).toPrecision(digits);
}

function setStatus(id, text, ok) {
  const el = $(id);
  el.textContent = text;
  el.className = "status " + (ok === true ? "ok" : ok === false ? "error" : "");
}

// ---------- pages ----------
function showPage() {
  const hash = location.hash.replace(/^#/, "") || "target";
  const [page, arg] = hash.split("/");
  document.querySelectorAll(".page").forEach((s) => { s.hidden = s.id !== "page-" + page; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  if (page === "jobs") loadJobs();
  if (page === "job" && arg) openJob(arg);
  if (page === "grade") loadGradePage();
}

// ---------- target ----------
function buildGrid() {
  const table = $("grid");
  let html = "<tr><th></th>" + LABELS.map((l) => `<th>${l}</th>`).join("") + "</tr>";
  for (let i = 0; i < 6; i++) {
    html += `<tr><th>${LABELS[i]}</th>`;
    for (let j = 0; j < 6; j++) {
      html += `<td class="${i === j ? "diag" : ""}"><input id="c-${i}-${j}" data-i="${i}" data-j="${j}" value="0"></td>`;
    }
    html += "</tr>";
  }
  table.innerHTML = html;
  table.querySelectorAll("input").forEach((input) => input.addEventListener("input", () => {
    gridName = "grid";
    if ($("mirror").checked) {
      const other = $(`c-${input.dataset.j}-${input.dataset.i}`);
      if (other !== input) other.value = input.value;
    }
  }));
}

function setGrid(C) {
  for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) $(`c-${i}-${j}`).value = String(Number(Number(C[i][j]).toPrecision(10)));
}

function gridText() {
  const rows = [];
  for (let i = 0; i < 6; i++) {
    const row = [];
    for (let j = 0; j < 6; j++) row.push($(`c-${i}-${j}`).value.trim() || "0");
    rows.push(row.join(", "));
  }
  return rows.join("\n") + "\n";
}

function baseModulus() {
  const material = $("material").value;
  if (material === "custom") return $("custom-modulus").value.trim();
  return INFO.materials[material];
}

function targetSpec(text, name) {
  return { text, name: name || `${gridName}.csv`, unit: $("unit").value, base_modulus: $("unit").value === "normalized" ? null : baseModulus() };
}

async function checkTarget(spec) {
  setStatus("target-status", "checking ...");
  $("report").innerHTML = "";
  try {
    const result = await api("/api/target", spec || targetSpec(gridText()));
    showReport(result.report);
    if (result.admissible) {
      lastTarget = spec || targetSpec(gridText());
      setStatus("target-status", `${result.name}: admissible`, true);
      drawSurface("surface-3d", "surface-sections", [{ label: "target", surface: result.surface }]);
    } else {
      lastTarget = null;
      setStatus("target-status", "error: " + result.error, false);
      Plotly.purge("surface-3d"); Plotly.purge("surface-sections");
    }
    return result;
  } catch (error) {
    lastTarget = null;
    setStatus("target-status", "error: " + error.message, false);
    return null;
  }
}

function showReport(report) {
  const rows = [
    ["symmetric", report.symmetric, report.max_asymmetry],
    ["positive definite", report.positive_definite, report.min_eigenvalue],
    ["strongly elliptic", report.strongly_elliptic, report.min_acoustic_eigenvalue],
  ];
  $("report").innerHTML = rows.map(([name, ok, value]) =>
    `<tr><td>${name}</td><td class="${ok ? "" : "error"}">${ok === null ? "not checked" : ok ? "yes" : "no"}</td><td class="small">${fmt(value)}</td></tr>`).join("");
}

async function loadBuiltin() {
  const name = $("builtin").value;
  const target = await api(`/api/targets/${encodeURIComponent(name)}`);
  setGrid(target.C);
  gridName = target.name;
  $("unit").value = target.unit;
  if (target.base_material && INFO.materials[target.base_material]) $("material").value = target.base_material;
  $("custom-box").hidden = $("material").value !== "custom";
  return checkTarget();
}

async function usePasted() {
  const tokens = $("paste").value.split(/[\s,;]+/).filter((t) => t.length);
  const text = tokens.length === 21 ? `{"C21": [${tokens.join(", ")}]}` : $("paste").value;
  const spec = targetSpec(text, tokens.length === 21 ? "pasted.json" : "pasted.csv");
  const result = await checkTarget(spec);
  if (result) {
    const scale = result.base_modulus_pa ? result.base_modulus_pa / unitPascal(result.unit) : 1;
    setGrid(result.C.map((row) => row.map((v) => Number((v * scale).toPrecision(6)))));
  }
}

function unitPascal(unit) {
  return { Pa: 1, kPa: 1e3, MPa: 1e6, GPa: 1e9 }[unit] || 1;
}

async function uploadTarget(event) {
  const file = event.target.files[0];
  if (!file) return;
  if (file.size > MAX_UPLOAD) {
    setStatus("target-status", `error: upload too large: ${file.size} bytes, at most ${MAX_UPLOAD} bytes`, false);
    return;
  }
  const text = await file.text();
  const result = await checkTarget(targetSpec(text, file.name));
  if (result) {
    const scale = result.base_modulus_pa ? result.base_modulus_pa / unitPascal(result.unit) : 1;
    setGrid(result.C.map((row) => row.map((v) => Number((v * scale).toPrecision(6)))));
  }
}

// ---------- plots ----------
function drawSurface(id3d, idSections, items) {
  const colours = ["#1f77b4", "#ff7f0e"];
  const traces = items.map((item, n) => ({
    type: "surface", x: item.surface.x, y: item.surface.y, z: item.surface.z, surfacecolor: item.surface.E,
    colorscale: n === 0 ? "Viridis" : [[0, colours[n]], [1, colours[n]]], opacity: items.length > 1 ? 0.55 : 1,
    showscale: n === 0, name: item.label, colorbar: { title: { text: "E/E_b" }, len: 0.7 },
  }));
  Plotly.react(id3d, traces, {
    margin: { l: 0, r: 0, t: 20, b: 0 }, showlegend: items.length > 1,
    scene: { aspectmode: "data", xaxis: { title: { text: "e1" } }, yaxis: { title: { text: "e2" } }, zaxis: { title: { text: "e3" } } },
  }, { responsive: true, displaylogo: false });
  const planes = ["e1-e2", "e1-e3", "e2-e3"];
  const polar = [];
  items.forEach((item, n) => planes.forEach((plane, p) => polar.push({
    type: "scatterpolar", mode: "lines", theta: item.surface.sections[plane].phi_deg, r: item.surface.sections[plane].E,
    subplot: p === 0 ? "polar" : `polar${p + 1}`, name: `${item.label} ${plane}`, showlegend: p === 0 && items.length > 1,
    line: { color: colours[n], dash: n === 0 ? "solid" : "dash" },
  })));
  const layout = { margin: { l: 20, r: 20, t: 30, b: 20 }, annotations: [] };
  planes.forEach((plane, p) => {
    layout[p === 0 ? "polar" : `polar${p + 1}`] = { domain: { x: [p / 3 + 0.02, (p + 1) / 3 - 0.02], y: [0, 0.88] }, radialaxis: { tickfont: { size: 7 }, nticks: 3, angle: 90 }, angularaxis: { tickfont: { size: 8 } } };
    layout.annotations.push({ text: plane, showarrow: false, x: (p + 0.5) / 3, y: 1.0, xref: "paper", yref: "paper" });
  });
  Plotly.react(idSections, polar, layout, { responsive: true, displaylogo: false });
}

function parseStl(buffer) {
  const view = new DataView(buffer);
  const count = view.getUint32(80, true);
  if (84 + 50 * count !== buffer.byteLength) throw new Error("not a binary STL");
  const x = new Float32Array(3 * count), y = new Float32Array(3 * count), z = new Float32Array(3 * count);
  const i = new Uint32Array(count), j = new Uint32Array(count), k = new Uint32Array(count);
  for (let t = 0; t < count; t++) {
    const base = 84 + 50 * t + 12;
    for (let v = 0; v < 3; v++) {
      x[3 * t + v] = view.getFloat32(base + 12 * v, true);
      y[3 * t + v] = view.getFloat32(base + 12 * v + 4, true);
      z[3 * t + v] = view.getFloat32(base + 12 * v + 8, true);
    }
    i[t] = 3 * t; j[t] = 3 * t + 1; k[t] = 3 * t + 2;
  }
  return { x, y, z, i, j, k, count };
}

function drawMesh(id, mesh, title) {
  Plotly.react(id, [{
    type: "mesh3d", x: mesh.x, y: mesh.y, z: mesh.z, i: mesh.i, j: mesh.j, k: mesh.k,
    color: "#8aa7d6", flatshading: true, lighting: { ambient: 0.5, diffuse: 0.8, specular: 0.2 }, name: title,
  }], { margin: { l: 0, r: 0, t: 20, b: 0 }, title: { text: title, font: { size: 12 } }, scene: { aspectmode: "data" } },
  { responsive: true, displaylogo: false });
  $(id).dataset.triangles = String(mesh.count);
}

async function viewStl(url, title) {
  $("view-title").textContent = "3-D view: " + title;
  const response = await fetch(url);
  drawMesh("view-3d", parseStl(await response.arrayBuffer()), title);
}

// ---------- design ----------
function designOptionFields() {
  const family = INFO.families[$("family").value];
  const defaults = { samples: 2000, top: 3, seed: 0 };
  const fields = [];
  for (const name of family.design_options) {
    if (["samples", "top", "seed"].includes(name)) {
      fields.push(`<label>${name} <input id="opt-${name}" data-option="${name}" type="number" min="1" value="${defaults[name]}" size="6"></label>`);
    } else if (["refine", "verify"].includes(name)) {
      const on = name === "verify" ? "checked" : "";
      fields.push(`<label><input id="opt-${name}" data-option="${name}" type="checkbox" ${on}> ${name}</label>`);
    }
  }
  $("design-options").innerHTML = fields.join(" ");
}

async function runDesign() {
  const spec = targetSpec(gridText());
  const options = {};
  document.querySelectorAll("#design-options [data-option]").forEach((input) => {
    options[input.dataset.option] = input.type === "checkbox" ? input.checked : Number(input.value);
  });
  setStatus("design-status", "submitting ...");
  try {
    const job = await api("/api/jobs/design", { target: spec, family: $("family").value, options });
    setStatus("design-status", `job ${job.id} queued`, true);
    location.hash = "job/" + job.id;
  } catch (error) {
    setStatus("design-status", "error: " + error.message, false);
  }
}

// ---------- jobs ----------
async function loadJobs() {
  const { jobs } = await api("/api/jobs");
  $("jobs-table").innerHTML = "<tr><th>job</th><th>kind</th><th>status</th><th>progress</th><th>created</th><th>target / source</th></tr>" +
    jobs.map((job) => `<tr><td><a href="#job/${job.id}">${job.id}</a></td><td>${job.kind}</td><td>${job.status}</td>` +
      `<td>${Math.round(100 * job.progress)} %</td><td>${new Date(job.created * 1000).toLocaleString()}</td>` +
      `<td>${job.params.target ? job.params.target.name || "" : (job.params.candidates || []).join(", ")}</td></tr>`).join("");
}

function openJob(id) {
  if (jobEvents) jobEvents.close();
  currentJob = id;
  $("job-title").textContent = "Job " + id;
  $("job-results").hidden = true;
  $("job-grade-result").hidden = true;
  $("job-error").textContent = "";
  $("job-progress").value = 0;
  $("job-percent").textContent = "0 %";
  $("job-status").textContent = "";
  ["view-3d", "overlay-3d", "overlay-sections"].forEach((p) => { if (window.Plotly) Plotly.purge(p); });
  jobEvents = new EventSource(`/api/jobs/${id}/events`);
  jobEvents.onmessage = (event) => showJobState(JSON.parse(event.data));
  jobEvents.addEventListener("failure", (event) => {
    $("job-error").textContent = "error: " + JSON.parse(event.data).error;
    jobEvents.close();
  });
  jobEvents.onerror = () => { if (jobEvents.readyState === EventSource.CLOSED) return; jobEvents.close(); api(`/api/jobs/${id}`).then(showJobState).catch((e) => { $("job-error").textContent = "error: " + e.message; }); };
}

function showJobState(state) {
  if (state.id !== currentJob) return;
  const percent = Math.round(100 * state.progress);
  $("job-progress").value = percent;
  $("job-percent").textContent = `${percent} %`;
  $("job-status").textContent = state.status + (state.queue_position ? ` (#${state.queue_position} in queue)` : "");
  $("job-message").textContent = state.message || "";
  $("job-log").textContent = (state.log || []).join("\n");
  $("job-cancel").hidden = ["done", "failed", "cancelled"].includes(state.status);
  if (state.error) $("job-error").textContent = "error: " + state.error;
  if (state.status === "done") {
    if (jobEvents) jobEvents.close();
    api(`/api/jobs/${state.id}`).then(showResults);
  }
}

function designSummary(design) {
  if (design.topology) return design.topology.map((t) => `${t.cell}/${t.tessellation}`).join(" + ");
  return Object.entries(design).filter(([k, v]) => k !== "family" && k !== "relative_density" && (typeof v !== "object" || (Array.isArray(v) && v.length <= 3)))
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(",") : v}`).join("; ");
}

function showResults(job) {
  if (job.id !== currentJob) return;
  const elapsed = job.finished && job.started ? (job.finished - job.started).toFixed(1) + " s" : "-";
  const files = (name) => job.files.includes(name) ? `/api/jobs/${job.id}/files/${name}` : null;
  $("overlay-panel").hidden = job.kind === "grade";
  if (job.kind === "grade") {
    $("job-grade-result").hidden = false;
    const s = job.summary || {};
    $("grade-summary").innerHTML = `${s.cells || "?"} cells, ${s.struts || "?"} struts, STL watertight: ${s.stl ? (s.stl.watertight ? "yes" : "no") : "-"} (${elapsed}) &middot; ` +
      job.files.map((f) => `<a href="${files(f)}" download>${f}</a>`).join(" ");
    const stl = job.files.find((f) => f.endsWith(".stl"));
    if (stl) viewStl(files(stl), "graded lattice");
    return;
  }
  const doc = job.designs;
  $("job-results").hidden = false;
  $("job-downloads").innerHTML = `<a href="${files("designs.json")}" download>designs.json</a> &middot; family ${doc.family} &middot; job time ${elapsed}`;
  let html = "<tr><th></th><th>#</th><th>design</th><th>rho</th><th>NMSE forward</th><th>NMSE FE</th><th>time</th><th>view</th><th>downloads</th></tr>";
  doc.candidates.forEach((c, n) => {
    const k = n + 1;
    const links = [`<a href="/api/jobs/${job.id}/candidates/${k}/design.json" download>design JSON</a>`];
    if (c.stl && files(c.stl)) links.push(`<a class="stl-link" href="${files(c.stl)}" download>STL</a>`);
    if (c.surface_png && files(c.surface_png)) links.push(`<a href="${files(c.surface_png)}" download>PNG</a>`);
    html += `<tr class="candidate"><td><input type="checkbox" class="pick" value="${k}"></td><td>${k}</td><td>${designSummary(c.design)}</td>` +
      `<td>${fmt(c.design.relative_density)}</td><td>${fmt(c.nmse_forward)}</td><td class="nmse-fe">${fmt(c.nmse_fe)}</td><td>${elapsed}</td>` +
      `<td>${c.stl ? `<button type="button" class="view-3d" data-k="${k}">3-D</button>` : ""} <button type="button" class="view-surface" data-k="${k}">surfaces</button></td>` +
      `<td>${links.join(" ")}</td></tr>`;
  });
  $("candidates").innerHTML = html;
  $("candidates").querySelectorAll(".view-3d").forEach((b) => b.addEventListener("click", () => {
    const c = doc.candidates[b.dataset.k - 1];
    viewStl(files(c.stl), `candidate ${b.dataset.k}`).catch((error) => { $("job-error").textContent = "error: " + error.message; });
  }));
  const shown = (promise) => promise.catch((error) => { $("job-error").textContent = "error: " + error.message; });
  $("candidates").querySelectorAll(".view-surface").forEach((b) => b.addEventListener("click", () => shown(overlay(doc, b.dataset.k))));
  shown(overlay(doc, 1));
}

async function overlay(doc, k) {
  const c = doc.candidates[k - 1];
  const design = c.C_fe || c.C_forward;
  const [target, designed] = await Promise.all([api("/api/surface", { C: doc.target }), api("/api/surface", { C: design })]);
  drawSurface("overlay-3d", "overlay-sections", [{ label: "target", surface: target }, { label: `candidate ${k}`, surface: designed }]);
}

async function cancelJob() {
  if (currentJob) await api(`/api/jobs/${currentJob}/cancel`, {}).then(showJobState).catch((e) => { $("job-error").textContent = "error: " + e.message; });
}

async function gradeFrom(jobId, picks, boxText, statusId) {
  const box = boxText.trim().split(/[\s,]+/).map(Number);
  try {
    const job = await api("/api/jobs/grade", { job: jobId, candidates: picks, box });
    location.hash = "job/" + job.id;
    setStatus(statusId, "");
  } catch (error) {
    setStatus(statusId, "error: " + error.message, false);
  }
}

async function loadGradePage() {
  const { jobs } = await api("/api/jobs");
  const done = jobs.filter((j) => j.kind === "design" && j.status === "done");
  $("grade-job").innerHTML = done.map((j) => `<option value="${j.id}">${j.id} (${j.params.target ? j.params.target.name : ""}, ${j.params.family})</option>`).join("");
  await gradeCandidates();
}

async function gradeCandidates() {
  const id = $("grade-job").value;
  if (!id) { $("grade-candidates").textContent = "no finished design job yet"; return; }
  const job = await api(`/api/jobs/${id}`);
  $("grade-candidates").innerHTML = job.designs.candidates.map((c, n) =>
    `<label><input type="checkbox" class="grade-pick" value="${n + 1}" ${n < 2 ? "checked" : ""}> #${n + 1} ${designSummary(c.design)} (NMSE FE ${fmt(c.nmse_fe, 3)})</label>`).join("");
}

// ---------- explore ----------
function exploreForm(design) {
  $("explore-form").innerHTML = Object.entries(design).filter(([k]) => k !== "family").map(([key, value]) =>
    `<label>${key} <input data-key="${key}" value='${JSON.stringify(value).replace(/'/g, "&#39;")}'></label>`).join("");
}

function exploreDesign() {
  const design = { family: $("explore-family").value };
  $("explore-form").querySelectorAll("input").forEach((input) => {
    try { design[input.dataset.key] = JSON.parse(input.value); } catch (e) { design[input.dataset.key] = input.value; }
  });
  return design;
}

async function runExplore() {
  setStatus("explore-status", "homogenizing ...");
  const cells = $("explore-cells").value.trim().split(/[\s,]+/).map(Number);
  try {
    const result = await api("/api/homogenize", { design: exploreDesign(), geometry: true, cells });
    setStatus("explore-status", `relative density ${fmt(result.relative_density)}; ${result.report.failures.length ? "not admissible: " + result.report.failures.join("; ") : "admissible"}`, true);
    $("explore-C").innerHTML = "<tr><th></th>" + LABELS.map((l) => `<th>${l}</th>`).join("") + "</tr>" +
      result.C.map((row, i) => `<tr><th>${LABELS[i]}</th>${row.map((v) => `<td class="small">${fmt(v, 3)}</td>`).join("")}</tr>`).join("");
    drawSurface("explore-surface", "explore-sections", [{ label: "design", surface: result.surface }]);
    const bytes = Uint8Array.from(atob(result.stl_base64), (ch) => ch.charCodeAt(0));
    drawMesh("explore-3d", parseStl(bytes.buffer), "design block");
  } catch (error) {
    setStatus("explore-status", "error: " + error.message, false);
  }
}

// ---------- start ----------
async function start() {
  buildGrid();
  INFO = await api("/api/info");
  $("builtin").innerHTML = INFO.targets.map((t) => `<option>${t}</option>`).join("");
  $("unit").innerHTML = INFO.units.map((u) => `<option>${u}</option>`).join("");
  $("unit").value = "GPa";
  $("material").innerHTML = Object.entries(INFO.materials).map(([m, e]) => `<option value="${m}">${m} (${e})</option>`).join("") + '<option value="custom">custom</option>';
  const designable = Object.keys(INFO.families).filter((f) => INFO.families[f].can_design);
  $("family").innerHTML = designable.map((f) => `<option>${f}</option>`).join("");
  $("explore-family").innerHTML = Object.keys(INFO.families).map((f) => `<option>${f}</option>`).join("");
  designOptionFields();
  exploreForm(INFO.families[$("explore-family").value].example);
  $("family").addEventListener("change", designOptionFields);
  $("explore-family").addEventListener("change", () => exploreForm(INFO.families[$("explore-family").value].example));
  $("material").addEventListener("change", () => { $("custom-box").hidden = $("material").value !== "custom"; });
  $("load-builtin").addEventListener("click", loadBuiltin);
  $("check").addEventListener("click", () => checkTarget());
  $("use-paste").addEventListener("click", usePasted);
  $("upload").addEventListener("change", uploadTarget);
  $("run-design").addEventListener("click", runDesign);
  $("job-cancel").addEventListener("click", cancelJob);
  $("explore-run").addEventListener("click", runExplore);
  $("grade-job").addEventListener("change", gradeCandidates);
  $("grade-run").addEventListener("click", () => gradeFrom($("grade-job").value,
    [...document.querySelectorAll(".grade-pick:checked")].map((b) => Number(b.value)), $("grade-box").value, "grade-status"));
  $("job-grade").addEventListener("click", () => gradeFrom(currentJob,
    [...document.querySelectorAll("#candidates .pick:checked")].map((b) => Number(b.value)), $("job-grade-box").value, "job-grade-status"));
  window.addEventListener("hashchange", showPage);
  showPage();
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => start().catch((error) => {
  document.body.insertAdjacentHTML("afterbegin", `<p class="status error">error: ${error.message}</p>`);
}));
