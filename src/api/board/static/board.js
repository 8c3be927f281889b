// The dispatcher's live board: GraphQL queries for the first picture, the `boardChanges`
// subscription for everything after it. The API key stays in sessionStorage and travels in
// the Authorization header (HTTP) or the connection_init payload (WebSocket), never in a URL.
// All text goes into the page through textContent: nothing from the API is parsed as HTML.

import { Connection, describeClose } from "./gqlws.js";

const KEY_STORAGE = "shipledger.board.key";
const SELECTED_STORAGE = "shipledger.board.selected";
const PAGE_SIZE = 200;
const MAX_PAGES = 25;
const REFRESH_EVERY_MS = 30000; // ages and positions move even when no board row does
const STALE_FIX_SECONDS = 15 * 60;
const CLOSED = new Set(["DELIVERED", "POD_RECEIVED", "READY_TO_INVOICE", "INVOICED", "CANCELLED"]);

const LOAD_FIELDS = `
  loadId reference status statusSince stopsTotal stopsDone nextStopSequence nextWindowEnd eta
  latenessRisk openExceptionCount nextActionOwner carrier vehicleCode driverCode viewPosition
  stops { sequence kind location { name code } }`;

const BOARD_QUERY = `query Board($first: Int!, $after: String) {
  loads(first: $first, after: $after) {
    viewPosition
    pageInfo { hasNextPage endCursor }
    edges { node { ${LOAD_FIELDS} } }
  }
}`;

const SIDE_QUERY = `query BoardSide {
  exceptionsQueue { exceptionId kind loadId loadReference stopId owner note raisedAt ageMinutes }
  vehiclePositions { deviceId vehicleCode lat lon speedKph heading fixAt ageSeconds }
}`;

const LOAD_QUERY = `query BoardLoad($id: ID!) {
  load(id: $id) {
    ${LOAD_FIELDS}
    driverName customers
    lastPosition { lat lon fixAt ageSeconds }
    stops {
      stopId sequence kind location { name code }
      window { start end } appointment { start end }
      arrivedAt arrivalSource departedAt departureSource
      dwellMinutes detentionMinutes onTime eta
    }
  }
}`;

const CHANGES_SUBSCRIPTION = `subscription BoardChanges($after: LogPosition) {
  boardChanges(afterPosition: $after) { position load { ${LOAD_FIELDS} } }
}`;

const RISK = {
  late: { label: "LATE", shape: "▲" },
  at_risk: { label: "AT RISK", shape: "◆" },
  on_track: { label: "ON TRACK", shape: "●" },
  unknown: { label: "NO ETA", shape: "○" },
  done: { label: "DONE", shape: "✓" },
};

const $ = (id) => document.getElementById(id);

const state = {
  key: null,
  loads: new Map(), // loadId → load row
  exceptions: [],
  positions: [],
  detail: null, // the selected load with its stops
  selectedId: sessionStorage.getItem(SELECTED_STORAGE),
  focusedId: null,
  lastPosition: 0,
  connection: null,
  retryMs: 1000,
  retryTimer: null,
  refreshTimer: null,
  pollTimer: null,
  changed: new Set(),
};

// --- formatting ------------------------------------------------------------------------------

const DAY = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short" });
const CLOCK = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const SECONDS = new Intl.DateTimeFormat("en-GB", { timeStyle: "medium", hourCycle: "h23" });

function when(value) {
  if (!value) return "—";
  const t = new Date(value);
  return `${DAY.format(t)} ${CLOCK.format(t)}`;
}

function span(start, end) {
  const a = new Date(start);
  const b = new Date(end);
  if (DAY.format(a) === DAY.format(b)) return `${DAY.format(a)} ${CLOCK.format(a)}–${CLOCK.format(b)}`;
  return `${when(start)} – ${when(end)}`;
}

/** A time as the board shows it: the clock large, the day (and a note) small beneath. */
function stamp(value, note) {
  const t = new Date(value);
  const node = el("time", null, "stamp");
  node.dateTime = value;
  node.append(el("span", CLOCK.format(t), "clock"), el("br"), small(note ? `${DAY.format(t)} · ${note}` : DAY.format(t)));
  return node;
}

function windowStamp(start, end) {
  const a = new Date(start);
  const b = new Date(end);
  const node = el("span", null, "stamp");
  if (DAY.format(a) !== DAY.format(b)) {
    node.append(el("span", `${when(start)} –`, "clock"), el("br"), el("span", when(end), "clock"));
    return node;
  }
  node.append(el("span", `${CLOCK.format(a)}–${CLOCK.format(b)}`, "clock"), el("br"), small(DAY.format(a)));
  return node;
}

function minutes(total) {
  if (total === null || total === undefined) return "—";
  const m = Math.max(0, Math.round(total));
  if (m < 60) return `${m} min`;
  if (m < 1440) return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
  const h = Math.floor((m % 1440) / 60);
  return h ? `${Math.floor(m / 1440)} d ${h} h` : `${Math.floor(m / 1440)} d`;
}

function words(enumValue) {
  const text = String(enumValue ?? "").toLowerCase().replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function cell(...children) {
  const td = document.createElement("td");
  for (const child of children) {
    if (child === null || child === undefined) continue;
    td.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return td;
}

function riskBadge(risk) {
  const known = RISK[risk] ?? { label: String(risk).toUpperCase(), shape: "?" };
  const badge = el("span", null, `risk risk-${risk in RISK ? risk : "unknown"}`);
  badge.append(el("span", known.shape, "shape"), ` ${known.label}`);
  badge.querySelector(".shape").setAttribute("aria-hidden", "true");
  return badge;
}

function small(text) {
  return el("span", text, "small");
}

// --- errors and status -----------------------------------------------------------------------

const shownErrors = new Set();

function showError(where, error) {
  const code = error?.extensions?.code;
  const path = Array.isArray(error?.path) ? ` at ${error.path.join(".")}` : "";
  const text = `${where}: ${code ? `${code} — ` : ""}${error?.message ?? String(error)}${path}`;
  if (shownErrors.has(text)) return;
  shownErrors.add(text);
  const item = el("li");
  item.append(el("time", SECONDS.format(new Date()), "small"), " ", text);
  $("error-list").append(item);
  $("errors").hidden = false;
}

function clearErrors() {
  shownErrors.clear();
  $("error-list").replaceChildren();
  $("errors").hidden = true;
}

function setLive(kind, text) {
  $("live").dataset.state = kind;
  $("live-text").textContent = text;
}

function setMeta() {
  $("meta").textContent = `Log position ${state.lastPosition} · updated ${SECONDS.format(new Date())}`;
}

function announce(text) {
  $("announce").textContent = text;
}

class GraphQLErrors extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
  }
}

function unauthenticated(errors) {
  return errors.some((e) => e?.extensions?.code === "UNAUTHENTICATED");
}

// --- GraphQL over HTTP -----------------------------------------------------------------------

async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: `Bearer ${state.key}`,
      },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (failure) {
    throw new GraphQLErrors([{ message: `the API did not answer (${failure.message})` }]);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLErrors([{ message: `HTTP ${response.status} ${response.statusText} (not JSON)` }]);
  }
  if (body.errors?.length) {
    const failure = new GraphQLErrors(body.errors);
    failure.data = body.data;
    throw failure;
  }
  if (!response.ok) {
    throw new GraphQLErrors([{ message: `HTTP ${response.status}: ${body.message ?? ""}` }]);
  }
  return body.data;
}

/** Runs a read; shows its errors (and signs out on a refused key). Returns data or null. */
async function read(where, query, variables) {
  try {
    return await gql(query, variables);
  } catch (failure) {
    const errors = failure.errors ?? [{ message: String(failure) }];
    for (const error of errors) showError(where, error);
    if (unauthenticated(errors)) signOut("The key was refused; enter a valid dispatcher key.");
    return failure.data ?? null;
  }
}

// --- reading the board -----------------------------------------------------------------------

async function loadBoard() {
  const fresh = new Map();
  let after = null;
  let position = 0;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const data = await read("Loads", BOARD_QUERY, { first: PAGE_SIZE, after });
    if (!data?.loads) return false;
    if (page === 0) position = data.loads.viewPosition;
    for (const edge of data.loads.edges) fresh.set(edge.node.loadId, edge.node);
    if (!data.loads.pageInfo.hasNextPage) break;
    after = data.loads.pageInfo.endCursor;
    if (page === MAX_PAGES - 1) {
      showError("Loads", { message: `the board shows the first ${fresh.size} loads only (more are not listed)` });
    }
  }
  state.loads = fresh;
  state.lastPosition = Math.max(state.lastPosition, position);
  renderLoads();
  setMeta();
  return true;
}

async function loadSide() {
  const data = await read("Exceptions and positions", SIDE_QUERY);
  if (!data) return;
  if (data.exceptionsQueue) {
    state.exceptions = data.exceptionsQueue;
    renderExceptions();
  }
  if (data.vehiclePositions) {
    state.positions = data.vehiclePositions;
    renderMap();
  }
}

async function loadDetail() {
  const id = state.selectedId;
  if (!id) {
    state.detail = null;
    renderStops();
    return;
  }
  const data = await read("Stop times", LOAD_QUERY, { id });
  if (state.selectedId !== id || !data) return;
  if (data.load === null) {
    showError("Stop times", { message: `load ${id} is not on this board (or not yours)` });
    state.selectedId = null;
    sessionStorage.removeItem(SELECTED_STORAGE);
  }
  state.detail = data.load;
  renderStops();
  renderMap();
}

function refreshSoon() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    if (state.key) Promise.all([loadSide(), loadDetail()]).then(setMeta);
  }, 200);
}

// --- the live feed ---------------------------------------------------------------------------

function connectLive() {
  clearTimeout(state.retryTimer);
  if (!state.key) return;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  setLive("connecting", "Connecting to live updates…");
  const connection = new Connection(url, { Authorization: `Bearer ${state.key}` }, {
    onAck: () => {
      state.retryMs = 1000;
      setLive("live", "Live");
      subscribe(connection);
    },
    onClose: (code, reason, acked) => {
      if (state.connection !== connection) return; // replaced, or signed out
      state.connection = null;
      const why = describeClose(code, reason);
      if (code === 4403) {
        showError("Live updates", { message: why });
        signOut("The server refused the key for live updates; enter a valid dispatcher key.");
        return;
      }
      // a protocol error is a fault to report; a dropped connection only needs a retry
      if (code >= 4400 && code < 4500) showError("Live updates", { message: why });
      retryLive(acked, why);
    },
  });
  state.connection = connection;
}

function subscribe(connection) {
  connection.subscribe(
    "board",
    { query: CHANGES_SUBSCRIPTION, variables: { after: state.lastPosition } },
    {
      next: (result) => {
        for (const error of result.errors ?? []) showError("Live updates", error);
        if (unauthenticated(result.errors ?? [])) signOut("The key was refused; sign in again.");
        const change = result.data?.boardChanges;
        if (change) applyChange(change);
      },
      error: (errors) => {
        for (const error of errors) showError("Live updates", error);
        if (unauthenticated(errors)) {
          signOut("The key was refused; sign in again.");
        } else {
          connection.close(1000, "the subscription failed"); // onClose retries
        }
      },
      complete: () => {
        setLive("reconnecting", "Live feed ended; resubscribing…");
        setTimeout(() => state.connection === connection && subscribe(connection), 1000);
      },
    },
  );
}

function retryLive(wasLive, why) {
  const wait = state.retryMs;
  state.retryMs = Math.min(state.retryMs * 2, 30000);
  setLive("reconnecting", `Live updates lost (${why}); retrying in ${Math.round(wait / 1000)} s`);
  state.retryTimer = setTimeout(async () => {
    if (!state.key) return;
    if (wasLive) {
      // catch up on what the gap hid (the subscription resumes from the board's position)
      if (await loadBoard()) await Promise.all([loadSide(), loadDetail()]);
    }
    connectLive();
  }, wait);
}

function applyChange(change) {
  state.lastPosition = Math.max(state.lastPosition, change.position);
  const load = change.load;
  const before = state.loads.get(load.loadId);
  if (before && before.viewPosition > load.viewPosition) return; // a fresher row is shown
  state.loads.set(load.loadId, load);
  state.changed.add(load.loadId);
  if (before && before.latenessRisk !== load.latenessRisk) {
    announce(`${load.reference} is now ${(RISK[load.latenessRisk] ?? RISK.unknown).label}`);
  } else if (before && before.openExceptionCount !== load.openExceptionCount) {
    announce(`${load.reference} has ${load.openExceptionCount} open exceptions`);
  }
  renderLoads();
  setMeta();
  refreshSoon();
}

// --- rendering: loads ------------------------------------------------------------------------

function visibleLoads() {
  const showClosed = $("show-closed").checked;
  return [...state.loads.values()]
    .filter((load) => showClosed || !CLOSED.has(load.status))
    .sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
}

function nextStop(load) {
  if (load.nextStopSequence === null || load.nextStopSequence === undefined) return null;
  return (load.stops ?? []).find((s) => s.sequence === load.nextStopSequence) ?? null;
}

function loadRow(load) {
  const tr = document.createElement("tr");
  tr.dataset.loadId = load.loadId;
  tr.tabIndex = -1;
  tr.classList.add(`row-${load.latenessRisk}`);
  if (load.openExceptionCount > 0) tr.classList.add("has-exceptions");
  if (state.changed.has(load.loadId)) tr.classList.add("changed");

  const ref = el("th", null, "ref");
  ref.scope = "row";
  ref.append(el("strong", load.reference), el("br"), small(`${load.stopsDone}/${load.stopsTotal} stops done`));
  if (load.loadId === state.selectedId) ref.append(el("br"), el("span", "selected", "tag selected-tag"));
  tr.append(ref);
  tr.append(cell(words(load.status), el("br"), small(`since ${CLOCK.format(new Date(load.statusSince))}`)));
  tr.append(cell(riskBadge(load.latenessRisk)));
  const stop = nextStop(load);
  if (stop) {
    tr.append(cell(el("span", `#${stop.sequence} ${stop.location?.name ?? "?"}`, "nowrap"), el("br"), small(words(stop.kind))));
  } else {
    tr.append(cell(load.nextStopSequence ? `#${load.nextStopSequence}` : "—"));
  }
  tr.append(cell(load.nextWindowEnd ? stamp(load.nextWindowEnd) : small("—")));
  tr.append(cell(load.eta ? stamp(load.eta) : small("no ETA")));
  if (load.openExceptionCount > 0) {
    const badge = el("span", null, "exc-badge");
    badge.append(el("span", "⚑", "shape"), ` ${load.openExceptionCount} open`);
    badge.querySelector(".shape").setAttribute("aria-hidden", "true");
    tr.append(cell(badge));
  } else {
    tr.append(cell(small("none")));
  }
  tr.append(cell(load.nextActionOwner ?? "—"));
  const crew = [load.vehicleCode, load.driverCode].filter(Boolean).join(" · ");
  tr.append(cell(load.carrier ?? "—", el("br"), small(crew || "not dispatched")));

  if (load.loadId === state.selectedId) {
    tr.classList.add("selected");
    tr.setAttribute("aria-current", "true");
  }
  const label = `${load.reference}, ${words(load.status)}, ${(RISK[load.latenessRisk] ?? RISK.unknown).label}`;
  tr.setAttribute("aria-label", load.loadId === state.selectedId ? `${label}, selected` : label);
  return tr;
}

function renderLoads() {
  const body = $("loads-body");
  const hadFocus = body.contains(document.activeElement);
  const loads = visibleLoads();
  const rows = loads.map(loadRow);
  body.replaceChildren(...rows);
  setTimeout(() => rows.forEach((r) => r.classList.remove("changed")), 2500);
  state.changed.clear();
  $("loads-count").textContent = `(${loads.length})`;
  $("loads-empty").hidden = loads.length > 0;
  // the tab's title tells a dispatcher looking at another window what needs attention
  const late = loads.filter((l) => l.latenessRisk === "late").length;
  const open = loads.reduce((n, l) => n + (l.openExceptionCount || 0), 0);
  document.title = `${late} late · ${open} ${open === 1 ? "exception" : "exceptions"} — shipledger board`;

  // one row is in the tab order (roving tabindex): the focused one, else the selected, else the first
  const ids = loads.map((l) => l.loadId);
  const current = [state.focusedId, state.selectedId].find((id) => id && ids.includes(id)) ?? ids[0];
  const row = rows[ids.indexOf(current)];
  if (row) {
    row.tabIndex = 0;
    if (hadFocus) row.focus({ preventScroll: true });
  }
}

function rowOf(loadId) {
  return [...$("loads-body").rows].find((r) => r.dataset.loadId === loadId) ?? null;
}

function focusRow(row) {
  if (!row) return;
  for (const r of $("loads-body").rows) r.tabIndex = -1;
  row.tabIndex = 0;
  state.focusedId = row.dataset.loadId;
  row.focus();
  row.scrollIntoView({ block: "nearest" });
}

function select(loadId) {
  state.selectedId = loadId;
  sessionStorage.setItem(SELECTED_STORAGE, loadId);
  state.detail = null;
  renderLoads();
  renderStops();
  const load = state.loads.get(loadId);
  if (load) announce(`Selected ${load.reference}`);
  loadDetail();
}

function onLoadsKey(event) {
  const row = event.target.closest("tr[data-load-id]");
  if (!row) return;
  const rows = [...$("loads-body").rows];
  const at = rows.indexOf(row);
  const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 };
  if (event.key in moves) {
    event.preventDefault();
    focusRow(rows[Math.max(0, Math.min(rows.length - 1, moves[event.key]))]);
  } else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    select(row.dataset.loadId);
  }
}

// --- rendering: exceptions -------------------------------------------------------------------

function renderExceptions() {
  const rows = state.exceptions.map((x) => {
    const tr = document.createElement("tr");
    const kind = el("span", null, "exc-badge");
    kind.append(el("span", "⚑", "shape"), ` ${x.kind.replaceAll("_", " ")}`);
    kind.querySelector(".shape").setAttribute("aria-hidden", "true");
    tr.append(cell(kind));
    const go = el("button", x.loadReference, "link");
    go.type = "button";
    go.setAttribute("aria-label", `Select load ${x.loadReference}`);
    go.addEventListener("click", () => {
      select(x.loadId);
      focusRow(rowOf(x.loadId));
    });
    tr.append(cell(go));
    tr.append(cell(x.owner ?? "—"));
    const age = el("span", minutes(x.ageMinutes), x.ageMinutes >= 60 ? "age old" : "age");
    tr.append(cell(age));
    tr.append(cell(x.note || small("—")));
    return tr;
  });
  $("exceptions-body").replaceChildren(...rows);
  $("exceptions-count").textContent = `(${rows.length})`;
  $("exceptions-empty").hidden = rows.length > 0;
}

// --- rendering: stop times -------------------------------------------------------------------

function factCell(at, source) {
  if (!at) return cell(small("—"));
  return cell(stamp(at, source ? `via ${source}` : "source not shown"));
}

function renderStops() {
  const load = state.detail;
  const table = $("stops-table");
  if (!load) {
    const selected = state.selectedId && state.loads.get(state.selectedId);
    $("stops-heading").textContent = selected ? `Stop times · ${selected.reference}` : "Stop times";
    $("stops-empty").textContent = selected ? "Loading stops…" : "Select a load to see its stops.";
    $("stops-empty").hidden = false;
    $("stops-summary").textContent = "";
    table.hidden = true;
    return;
  }
  $("stops-heading").textContent = `Stop times · ${load.reference}`;
  $("stops-caption").textContent = `Stops of load ${load.reference}`;
  const who = [load.carrier, load.vehicleCode, load.driverName ?? load.driverCode].filter(Boolean);
  const fix = load.lastPosition ? ` · last fix ${when(load.lastPosition.fixAt)}` : "";
  $("stops-summary").textContent =
    `${words(load.status)} · ${who.join(" · ") || "not dispatched"}` +
    `${load.customers?.length ? ` · for ${load.customers.join(", ")}` : ""}${fix}`;
  const rows = load.stops.map((s) => {
    const tr = document.createElement("tr");
    if (s.sequence === load.nextStopSequence) tr.classList.add("next");
    const seq = el("th", String(s.sequence));
    seq.scope = "row";
    if (s.sequence === load.nextStopSequence) seq.append(el("br"), el("span", "next", "tag"));
    tr.append(seq);
    const code = s.location?.code && s.location.code !== s.location.name ? ` · ${s.location.code}` : "";
    tr.append(cell(el("strong", s.location?.name ?? "?"), el("br"), small(`${words(s.kind)}${code}`)));
    const window = cell(windowStamp(s.window.start, s.window.end));
    if (s.appointment) window.append(el("br"), small(`appt ${span(s.appointment.start, s.appointment.end)}`));
    tr.append(window);
    tr.append(factCell(s.arrivedAt, s.arrivalSource));
    tr.append(factCell(s.departedAt, s.departureSource));
    tr.append(cell(minutes(s.dwellMinutes)));
    tr.append(
      s.detentionMinutes > 0
        ? cell(el("span", minutes(s.detentionMinutes), "detention"))
        : cell(small(s.detentionMinutes === 0 ? "none" : "—")),
    );
    if (s.onTime === true) tr.append(cell(el("span", "✓ on time", "ontime")));
    else if (s.onTime === false) tr.append(cell(riskBadge("late")));
    else tr.append(cell(small("—")));
    tr.append(cell(s.eta ? stamp(s.eta) : small("—")));
    return tr;
  });
  $("stops-body").replaceChildren(...rows);
  $("stops-empty").hidden = true;
  table.hidden = false;
}

// --- rendering: the schematic map ------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const RISK_COLOUR = {
  late: "#b8430a",
  at_risk: "#e69f00",
  on_track: "#0072b2",
  unknown: "#6b6b6b",
  done: "#6b6b6b",
};

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function marker(risk, x, y, fill, stroke) {
  const common = { fill, stroke, "stroke-width": 2 };
  if (risk === "late") return svg("path", { d: `M${x},${y - 10} L${x + 9},${y + 6} L${x - 9},${y + 6} Z`, ...common });
  if (risk === "at_risk") return svg("path", { d: `M${x},${y - 9} L${x + 9},${y} L${x},${y + 9} L${x - 9},${y} Z`, ...common });
  return svg("circle", { cx: x, cy: y, r: 7, ...common });
}

function renderMap() {
  const box = $("map");
  const positions = state.positions;
  const byVehicle = new Map();
  for (const load of state.loads.values()) {
    if (load.vehicleCode && !CLOSED.has(load.status)) byVehicle.set(load.vehicleCode, load);
  }
  const width = 560;
  const height = 300;
  const pad = 48;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "map-title",
    class: "map-svg",
  });
  root.append(svg("title", { id: "map-title" }, `Schematic map of ${positions.length} vehicle positions`));
  root.append(svg("rect", { x: 1, y: 1, width: width - 2, height: height - 2, class: "map-frame" }));
  if (positions.length === 0) {
    root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "map-note" }, "No vehicle positions yet"));
    box.replaceChildren(root);
    $("positions-list").replaceChildren();
    return;
  }
  const lats = positions.map((p) => p.lat);
  const lons = positions.map((p) => p.lon);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  const k = Math.cos((midLat * Math.PI) / 180); // east-west degrees are shorter away from the equator
  const [x0, x1] = [Math.min(...lons) * k, Math.max(...lons) * k];
  const [y0, y1] = [Math.min(...lats), Math.max(...lats)];
  const minimum = 0.01; // a box at least ~1 km across, even for one vehicle
  const scale = Math.min(
    (width - 2 * pad) / Math.max(x1 - x0, minimum),
    (height - 2 * pad) / Math.max(y1 - y0, minimum),
  );
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const toX = (lon) => width / 2 + (lon * k - cx) * scale;
  const toY = (lat) => height / 2 - (lat - cy) * scale;
  const km = Math.round(((width - 2 * pad) / scale) * 111);
  root.append(svg("text", { x: width - 10, y: height - 10, "text-anchor": "end", class: "map-note" }, `≈ ${km} km across · north up`));

  const selectedVehicle = state.selectedId ? state.loads.get(state.selectedId)?.vehicleCode : null;
  const items = [];
  for (const p of positions) {
    const load = byVehicle.get(p.vehicleCode);
    const risk = load?.latenessRisk ?? "unknown";
    const colour = RISK_COLOUR[risk] ?? RISK_COLOUR.unknown;
    const stale = p.ageSeconds > STALE_FIX_SECONDS;
    const x = toX(p.lon);
    const y = toY(p.lat);
    const group = svg("g", { class: "vehicle" });
    if (p.vehicleCode && p.vehicleCode === selectedVehicle) {
      group.append(svg("circle", { cx: x, cy: y, r: 16, fill: "none", stroke: "#000", "stroke-width": 2, "stroke-dasharray": "4 3" }));
    }
    group.append(marker(risk, x, y, stale ? "#fff" : colour, stale ? colour : "#000"));
    const label = `${p.vehicleCode ?? p.deviceId}${load ? ` · ${load.reference}` : ""}`;
    const right = x < width - 160;
    const dx = right ? 20 : -20;
    group.append(svg("text", { x: x + dx, y: y - 4, "text-anchor": right ? "start" : "end", class: "map-label" }, label));
    const sub = `${(RISK[risk] ?? RISK.unknown).label}${stale ? ` · fix ${minutes(p.ageSeconds / 60)} old` : ""}`;
    group.append(svg("text", { x: x + dx, y: y + 12, "text-anchor": right ? "start" : "end", class: "map-sub" }, sub));
    root.append(group);

    const speed = p.speedKph === null || p.speedKph === undefined ? "" : ` · ${Math.round(p.speedKph)} km/h`;
    const item = el("li");
    item.append(
      el("strong", p.vehicleCode ?? p.deviceId),
      ` ${load ? `on ${load.reference}` : "no active load"} · ${p.lat.toFixed(4)}, ${p.lon.toFixed(4)}${speed} · fix ${when(p.fixAt)} (${minutes(p.ageSeconds / 60)} ago)`,
    );
    if (stale) item.append(" ", el("span", "stale", "tag"));
    items.push(item);
  }
  box.replaceChildren(root);
  $("positions-list").replaceChildren(...items);
}

// --- signing in and out ----------------------------------------------------------------------

async function start() {
  clearErrors();
  $("key-form").hidden = true;
  $("board").hidden = false;
  $("forget-key").hidden = false;
  setLive("connecting", "Loading…");
  const ok = await loadBoard();
  if (!ok || !state.key) {
    if (state.key) setLive("offline", "Could not load the board (see the errors above)");
    return;
  }
  await Promise.all([loadSide(), loadDetail()]);
  renderStops();
  connectLive();
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(() => state.key && loadSide(), REFRESH_EVERY_MS);
}

function signOut(message) {
  state.key = null;
  sessionStorage.removeItem(KEY_STORAGE);
  clearInterval(state.pollTimer);
  clearTimeout(state.retryTimer);
  const connection = state.connection;
  state.connection = null;
  connection?.close(1000, "signed out");
  state.loads = new Map();
  state.detail = null;
  $("board").hidden = true;
  $("forget-key").hidden = true;
  document.title = "shipledger · dispatch board";
  $("key-form").hidden = false;
  setLive("idle", message ? "Not connected" : "Signed out");
  if (message) showError("Sign-in", { message });
  $("api-key").value = "";
  $("api-key").focus();
}

function init() {
  $("tz").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    start();
  });
  $("forget-key").addEventListener("click", () => signOut(null));
  $("clear-errors").addEventListener("click", clearErrors);
  $("show-closed").addEventListener("change", renderLoads);
  const body = $("loads-body");
  body.addEventListener("keydown", onLoadsKey);
  body.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-load-id]");
    if (!row) return;
    focusRow(row);
    select(row.dataset.loadId);
  });
  body.addEventListener("focusin", (event) => {
    const row = event.target.closest("tr[data-load-id]");
    if (row) state.focusedId = row.dataset.loadId;
  });

  state.key = sessionStorage.getItem(KEY_STORAGE);
  if (state.key) {
    start();
  } else {
    $("key-form").hidden = false;
    $("api-key").focus();
  }
}

init();
