// The review page: one tile (or site) at a time, keyboard first: y confirm, n reject,
// r or ? unrecognized (cannot tell: a field check), s skip, u undo.
// Actions run one after another in the order they were asked for, so fast typing is safe.
"use strict";

const state = { reviewer: "", tile: null, busy: 0, centre: Promise.resolve(false) };
let chain = Promise.resolve();
const $ = (id) => document.getElementById(id);

function enqueue(action) {
  state.busy += 1;
  document.body.dataset.busy = String(state.busy);
  chain = chain
    .then(action)
    .then(() => { $("message").textContent = ""; })
    .catch((err) => { $("message").textContent = err.message; })
    .finally(() => {
      state.busy -= 1;
      document.body.dataset.busy = String(state.busy);
    });
  return chain;
}

async function api(path, body) {
  const init = { credentials: "same-origin" };
  if (body !== undefined) {
    init.method = "POST";
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function render() {
  const tile = state.tile;
  $("done").hidden = tile !== null;
  $("grid").hidden = tile === null;
  const members = new Set(((tile && tile.site && tile.site.members) || [])
    .map(([dx, dy]) => `${dx},${dy}`));
  for (const img of document.querySelectorAll("#grid img")) {
    img.classList.remove("missing");
    img.classList.toggle("member", members.has(`${img.dataset.dx},${img.dataset.dy}`) &&
      img.id !== "centre");
    const shown = new Promise((resolve) => {
      img.onload = () => resolve(true);
      img.onerror = () => { img.classList.add("missing"); resolve(false); };
    });
    if (img.id === "centre") state.centre = tile ? shown : Promise.resolve(false);
    if (tile) img.src = `/tiles/${tile.id}/${img.dataset.dx}/${img.dataset.dy}`;
  }
  if (!tile) {
    renderPoint(null);
    for (const id of ["score", "zxy", "lonlat", "site", "known"]) $(id).textContent = "-";
    return;
  }
  $("score").textContent = tile.score.toFixed(4) + (tile.hit ? " (hit)" : "");
  renderSite(tile.site);
  renderPoint(tile);
  $("zxy").textContent = `${tile.z}/${tile.x}/${tile.y}`;
  $("lonlat").textContent = `${tile.lon.toFixed(6)}, ${tile.lat.toFixed(6)}`;
  const zoom = Math.min(tile.z, 19);
  $("maplink").href = `https://www.openstreetmap.org/?mlat=${tile.lat}&mlon=${tile.lon}` +
    `#map=${zoom}/${tile.lat}/${tile.lon}`;
}

// Where a lon, lat falls in the 3 x 3 view around tile (x, y) of zoom z, as fractions of the
// view's width and height (web mercator); null when outside it.
function inView(lon, lat, z, x, y) {
  const n = 2 ** z;
  const phi = (lat * Math.PI) / 180;
  const fx = ((lon + 180) / 360) * n - x + 1;
  const fy = ((1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2) * n - y + 1;
  return fx >= 0 && fx < 3 && fy >= 0 && fy < 3 ? [fx / 3, fy / 3] : null;
}

// The site's point (its best tile's class-activation peak, or its tiles' weighted centre).
function renderPoint(tile) {
  const where = tile && tile.site ? inView(tile.site.lon, tile.site.lat, tile.z, tile.x, tile.y)
    : null;
  $("point").hidden = where === null;
  if (where === null) return;
  $("point").style.left = `${(100 * where[0]).toFixed(3)}%`;
  $("point").style.top = `${(100 * where[1]).toFixed(3)}%`;
}

function renderSite(site) {
  for (const el of document.querySelectorAll(".site-only")) el.hidden = !site;
  if (!site) return;
  $("sitepoint").textContent = `${site.lon.toFixed(6)}, ${site.lat.toFixed(6)}`;
  const outside = site.tiles - site.members.filter(([dx, dy]) =>
    Math.abs(dx) <= 1 && Math.abs(dy) <= 1).length;
  $("site").textContent = `${site.site_id}: ${site.tiles} tile${site.tiles === 1 ? "" : "s"}` +
    ` (mean ${site.mean_score.toFixed(3)})` + (outside ? `, ${outside} beyond this view` : "");
  $("known").textContent = site.known === null ? "no known schools given" :
    (site.known ? "known" : "new") + ` (nearest ${site.nearest_known}, ` +
    `${Math.round(site.distance_m)} m)`;
}

async function refresh() {
  const s = await api("/api/stats");
  $("reviewed").textContent = `${s.reviewed} (${s.positive} confirmed, ${s.negative} rejected, ` +
    `${s.unrecognized} unrecognized, ${s.skip} skipped)`;
  $("remaining").textContent = String(s.remaining);
  $("rate").textContent = s.rate_per_hour ? `${s.rate_per_hour.toFixed(0)} per hour` : "-";
  $("eta").textContent = s.eta_s === null ? "-" : s.eta;
  const p = s.precision;
  $("precision").textContent = p.value === null ? "no hits reviewed yet" :
    `${(100 * p.value).toFixed(1)} % (95 % interval ${(100 * p.low).toFixed(1)}-` +
    `${(100 * p.high).toFixed(1)} %, ${p.hits_checked} hits)`;
  const current = state.tile ? `?current=${state.tile.id}` : "";
  const svg = await fetch(`/overview.svg${current}`, { credentials: "same-origin" });
  $("overview").innerHTML = await svg.text();
}

async function loadNext() {
  state.tile = await api("/api/next", { reviewer: state.reviewer });
  render();
  await refresh();
}

async function decide(decision) {
  if (!state.tile) return;
  // Nobody confirms or rejects a tile they could not see (the server refuses it too).
  if (decision !== "skip" && !(await state.centre)) {
    throw new Error("this tile has no image: s skips it");
  }
  await api("/api/decision", { id: state.tile.id, decision, reviewer: state.reviewer });
  await loadNext();
}

async function undo() {
  const undone = await api("/api/undo", { reviewer: state.reviewer });
  if (undone) await loadNext();
}

const ACTIONS = { y: () => decide("positive"), n: () => decide("negative"),
                  r: () => decide("unrecognized"), "?": () => decide("unrecognized"),
                  s: () => decide("skip"), u: undo };

document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) {
    return;
  }
  const action = ACTIONS[event.key.toLowerCase()];
  if (action) {
    event.preventDefault();
    enqueue(action);
  }
});

async function start() {
  const settings = await api("/api/config");
  state.reviewer = localStorage.getItem("satx-reviewer") || settings.reviewer;
  $("reviewer").value = state.reviewer;
  const unit = settings.unit === "site" ? "sites" : "tiles";
  $("task").textContent = `confirm ${settings.positive_class}? (${unit}, order: ` +
    `${settings.order}, threshold ${settings.threshold})`;
  $("reviewer").addEventListener("change", (event) => {
    const name = event.target.value.trim();
    if (!name) return;
    state.reviewer = name;
    localStorage.setItem("satx-reviewer", name);
    event.target.blur();
    enqueue(loadNext);
  });
  for (const button of document.querySelectorAll("#actions button")) {
    button.addEventListener("click", () => enqueue(ACTIONS[button.dataset.key]));
  }
  await loadNext();
}

enqueue(start);
