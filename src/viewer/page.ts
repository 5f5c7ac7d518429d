// The viewer's page: HTML, stylesheet and script as strings, served by server.ts (no asset files,
// so the build needs no copy step). Vanilla JS, no external requests; the script and the style are
// separate routes so the page runs under a CSP without 'unsafe-inline'. Event text is untrusted:
// it only ever reaches the DOM through textContent, never as markup.

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page; `token` is URL-safe (server.ts checks its alphabet), `title` is escaped here. */
export function pageHtml(token: string, title: string): string {
  const t = escapeHtml(title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringlog · ${t}</title>
<link rel="stylesheet" href="app.css?token=${token}">
</head>
<body>
<header id="top">
  <h1>ringlog <span id="base">${t}</span></h1>
  <div id="stats"><b id="count" data-testid="count">–</b> events · indexes <span id="index-range">–</span> · <span id="span">–</span> · <span id="segments">–</span><span id="dropped"></span><span id="projected"></span><span id="issues"></span></div>
  <div id="following" data-testid="following" data-state="unknown">…</div>
</header>
<section id="timeline">
  <div id="hist-wrap"><canvas id="histogram" data-testid="histogram" aria-label="events over time, stacked by type"></canvas><div id="hist-info"></div></div>
  <ul id="legend" data-testid="legend"></ul>
</section>
<section id="controls">
  <input type="range" id="scrubber" data-testid="scrubber" min="0" max="0" value="0" step="1" aria-label="event index">
  <label>index <input id="jump-index" data-testid="jump-index" type="number" min="0" step="1"></label>
  <button id="jump-index-go" type="button">Go</button>
  <label>time <input id="jump-time" data-testid="jump-time" type="text" placeholder="2025-01-01 12:00:00.000 (UTC) or epoch ms" spellcheck="false"></label>
  <button id="jump-time-go" type="button">Go</button>
  <label class="check"><input type="checkbox" id="tail" data-testid="follow-newest"> follow newest</label>
  <span id="jump-error" role="alert"></span>
</section>
<section id="filters">
  <input id="search" data-testid="search" type="search" placeholder="search text" spellcheck="false" aria-label="search text">
  <select id="session" data-testid="session" aria-label="session"><option value="">all sessions</option></select>
  <button id="clear-filters" data-testid="clear-filters" type="button">clear filters</button>
  <span id="filter-info" data-testid="filter-info"></span>
  <span class="hint">click a type in the legend to show only it</span>
</section>
<main>
  <section id="list-pane"><ol id="event-list" data-testid="event-list" tabindex="0" aria-label="events"></ol></section>
  <section id="json-pane"><div id="event-meta" data-testid="event-meta"></div><div id="pair" data-testid="pair"></div><pre id="event-json" data-testid="event-json"></pre></section>
</main>
<script src="app.js?token=${token}"></script>
</body>
</html>
`;
}

export const APP_CSS = `
:root {
  --bg: #0f1419; --panel: #161c24; --line: #263040; --fg: #d8dee9; --dim: #8a96a8;
  --accent: #4fb3ff; --sel: #1d3552; --err: #ff7b72; --ok: #7ee787;
  --mono: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  color-scheme: dark;
}
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; background: var(--bg); color: var(--fg); font: 13px/1.4 system-ui, "DejaVu Sans", sans-serif; }
body { display: flex; flex-direction: column; height: 100vh; overflow: hidden; }
header { display: flex; align-items: center; gap: 16px; padding: 8px 14px; border-bottom: 1px solid var(--line); background: var(--panel); }
h1 { font-size: 15px; margin: 0; font-weight: 600; white-space: nowrap; }
h1 span { color: var(--dim); font-weight: 400; margin-left: 4px; }
#stats { color: var(--dim); flex: 1; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#stats b { color: var(--fg); }
#dropped, #issues { margin-left: 8px; color: #e3b341; }
#projected { margin-left: 8px; }
#following { padding: 2px 10px; border-radius: 10px; border: 1px solid var(--line); color: var(--dim); white-space: nowrap; }
#following[data-state=following] { color: var(--ok); border-color: #2e5b36; }
#following[data-state=following]::before { content: "● "; }
#following[data-state=error] { color: var(--err); border-color: #6e2b2b; }
#following.grew { background: #1f3b26; }
#timeline { padding: 8px 14px 6px; border-bottom: 1px solid var(--line); }
#hist-wrap { position: relative; height: 170px; }
#histogram { width: 100%; height: 100%; display: block; cursor: crosshair; }
#hist-info { position: absolute; top: 2px; right: 4px; font-size: 12px; color: var(--fg); pointer-events: none; background: rgba(15, 20, 25, .85); padding: 0 6px; border-radius: 3px; white-space: pre; font-family: var(--mono); }
#hist-info:empty { display: none; }
#legend { list-style: none; display: flex; flex-wrap: wrap; gap: 2px 16px; margin: 6px 0 0; padding: 0; font-size: 12px; color: var(--dim); }
#legend i, .type i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
#legend b { color: var(--fg); font-weight: 500; margin-right: 4px; }
#controls { display: flex; align-items: center; gap: 10px; padding: 8px 14px; border-bottom: 1px solid var(--line); flex-wrap: wrap; color: var(--dim); }
#scrubber { flex: 1; min-width: 220px; accent-color: var(--accent); }
input[type=number], input[type=text] { background: var(--panel); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 3px 6px; font: 12px var(--mono); }
#jump-index { width: 110px; }
#jump-time { width: 250px; }
button { background: #223044; color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 3px 10px; cursor: pointer; font: inherit; }
button:hover { border-color: var(--accent); }
label.check { user-select: none; }
#jump-error { color: var(--err); }
#filters { display: flex; align-items: center; gap: 10px; padding: 6px 14px; border-bottom: 1px solid var(--line); color: var(--dim); flex-wrap: wrap; }
#search { width: 260px; }
select { background: var(--panel); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 2px 6px; font: 12px var(--mono); max-width: 240px; }
#filter-info { color: var(--accent); }
#filters .hint { margin-left: auto; font-size: 11px; }
#legend li { cursor: pointer; padding: 0 4px; border-radius: 3px; border: 1px solid transparent; }
#legend li:hover { border-color: var(--line); }
#legend li.on { border-color: var(--accent); color: var(--fg); }
#legend li.off { opacity: .45; }
#legend li[data-type=other] { cursor: default; }
#pair { margin-bottom: 6px; font-size: 12px; color: var(--dim); }
#pair:empty { display: none; }
#pair button { font-size: 12px; padding: 1px 8px; margin-right: 6px; }
main { flex: 1; display: flex; min-height: 0; }
#list-pane { flex: 1 1 56%; overflow: auto; border-right: 1px solid var(--line); }
#json-pane { flex: 1 1 44%; overflow: auto; padding: 8px 12px; }
#event-list { list-style: none; margin: 0; padding: 2px 0; font: 12px/1.55 var(--mono); outline: none; }
#event-list li { display: flex; gap: 12px; padding: 0 10px; white-space: nowrap; cursor: pointer; border-left: 3px solid transparent; }
#event-list li:hover { background: #1a2230; }
#event-list li.sel { background: var(--sel); border-left-color: var(--accent); }
#event-list li.more { color: var(--dim); cursor: default; justify-content: center; }
#event-list .idx { color: var(--dim); min-width: 8ch; text-align: right; }
#event-list .time { color: #9fb1c8; }
#event-list .type { min-width: 15ch; }
#event-list .sess { color: #7d8fa6; min-width: 8ch; }
#event-list .preview { color: var(--dim); overflow: hidden; text-overflow: ellipsis; }
#event-meta { color: var(--dim); margin-bottom: 6px; font-size: 12px; }
#event-meta b { color: var(--fg); }
#event-json { margin: 0; font: 12px/1.45 var(--mono); white-space: pre-wrap; word-break: break-all; }
#event-json .k { color: #79c0ff; }
#event-json .s { color: #a5d6ff; }
#event-json .n { color: #ffa657; }
#event-json .l { color: #ff7b72; }
`;

// The browser script. Plain ES2017 with no template literals, so it can live in this TS string.
export const APP_JS = String.raw`(function () {
'use strict';

var TOKEN = new URLSearchParams(location.search).get('token') || '';
// Once a second: a summary is a few hundred bytes, so this costs nothing, needs no held-open
// connection (and so survives a restarted server), and a person watching a log does not notice
// a second's delay. The histogram and the list are fetched again only when the set grew.
var POLL_MS = 1000;
// Rows fetched around the selection: two screenfuls, so arrow keys rarely wait for the server.
var PAGE = 80;
// A new page is fetched when the selection comes this close to either end of the loaded rows.
var EDGE = 8;
// Rows moved by PageUp/PageDown: about one screenful of the list.
var PAGE_STEP = 20;
// Pixels per histogram bucket: bars stay wide enough to hover and click.
var BUCKET_PX = 4;
// Pretty JSON longer than this is shown without colouring: one span per token would be too many elements.
var HIGHLIGHT_MAX = 200000;
// Scrubber drags settle this long before the list follows, so a drag does not queue a fetch per pixel.
var SCRUB_SETTLE_MS = 120;
// Distinct on a dark background and for the common forms of colour blindness (Okabe-Ito first).
var PALETTE = ['#56b4e9', '#e69f00', '#009e73', '#f0e442', '#cc79a7', '#d55e00', '#0072b2',
  '#a3be8c', '#b48ead', '#88c0d0', '#ebcb8b'];
var OTHER_COLOR = '#6b7280';

function $(id) { return document.getElementById(id); }

var S = {
  summary: null, hist: null, rows: [], hasBefore: false, hasAfter: false,
  selected: null, event: null, seq: 0, colors: {}, nextColor: 0, scrubTimer: 0,
  // What the list shows: types picked in the legend (none picked: all), one session, a text.
  filter: { types: [], session: '', q: '' }, searchedAll: true
};
// The search box waits this long after the last keystroke, so typing does not queue a search per key.
var SEARCH_SETTLE_MS = 300;

function api(name, params) {
  var q = new URLSearchParams();
  Object.keys(params || {}).forEach(function (k) { q.set(k, String(params[k])); });
  var qs = q.toString();
  return fetch('api/' + name + (qs ? '?' + qs : ''), { headers: { 'X-Ringlog-Token': TOKEN }, cache: 'no-store' })
    .then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error(r.status + ': ' + t.trim()); });
      return r.json();
    });
}

function showError(err) { $('jump-error').textContent = err ? String(err.message || err) : ''; }

function fmtInt(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
function isoTime(ms) { return new Date(ms).toISOString(); }
function fmtTime(ms, withDate) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '–';
  var iso = isoTime(ms);
  return withDate ? iso.slice(0, 10) + ' ' + iso.slice(11, 23) : iso.slice(11, 23);
}
function fmtDuration(ms) {
  if (!isFinite(ms)) return '';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
  return (ms / 3600000).toFixed(1) + ' h';
}
/** Epoch ms, an ISO time, or the "YYYY-MM-DD HH:MM:SS.mmm" the page shows (UTC unless a zone is given). */
function parseTime(v) {
  v = v.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  var s = v.replace(/\s*UTC$/i, '').replace(' ', 'T');
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(s)) s += 'Z';
  var t = Date.parse(s);
  return isNaN(t) ? null : t;
}

function colorOf(type) {
  if (type === 'other') return OTHER_COLOR;
  if (!(type in S.colors)) {
    S.colors[type] = S.nextColor < PALETTE.length ? PALETTE[S.nextColor] : OTHER_COLOR;
    S.nextColor++;
  }
  return S.colors[type];
}

// ---------------------------------------------------------------------------------------------
// Header.

function renderSummary() {
  var s = S.summary;
  $('count').textContent = fmtInt(s.events);
  $('count').dataset.events = String(s.events);
  $('index-range').textContent = s.firstIndex === null ? '–' : fmtInt(s.firstIndex) + '–' + fmtInt(s.lastIndex);
  $('span').textContent = s.firstTime === null ? 'no events'
    : fmtTime(s.firstTime, true) + ' → ' + fmtTime(s.lastTime, s.lastTime - s.firstTime >= 86400000) +
      ' UTC (' + fmtDuration(s.lastTime - s.firstTime) + ')';
  $('segments').textContent = s.segments.length + (s.segments.length === 1 ? ' file' : ' files');
  $('dropped').textContent = s.droppedIndexes ? fmtInt(s.droppedIndexes) + ' dropped' : '';
  $('projected').textContent = s.projectedIndexes ? fmtInt(s.projectedIndexes) + ' projected' : '';
  $('issues').textContent = s.issues.count ? fmtInt(s.issues.count) + ' unreadable lines' : '';
  $('issues').title = s.issues.samples.join('\n');
  var f = $('following');
  f.dataset.state = !s.follow ? 'static' : s.error ? 'error' : 'following';
  f.textContent = !s.follow ? 'not following' : s.error ? 'follow error' : 'following';
  f.title = s.error || (s.follow ? 'new events appear as the log grows' : 'started with follow off');
  var sc = $('scrubber');
  if (s.firstIndex !== null) { sc.min = String(s.firstIndex); sc.max = String(s.lastIndex); }
}

// ---------------------------------------------------------------------------------------------
// Histogram.

function loadHistogram() {
  var w = $('histogram').clientWidth || 800;
  var buckets = Math.max(10, Math.min(2000, Math.floor(w / BUCKET_PX)));
  return api('histogram', { buckets: buckets }).then(function (h) {
    S.hist = h;
    h.series.forEach(function (s) { colorOf(s.type); });
    drawHistogram();
    renderLegend();
  });
}

function bucketTotals(h) {
  var totals = new Array(h.buckets).fill(0);
  h.series.forEach(function (s) { for (var b = 0; b < h.buckets; b++) totals[b] += s.counts[b]; });
  return totals;
}

function drawHistogram() {
  var c = $('histogram');
  var h = S.hist;
  if (!h) return;
  var dpr = window.devicePixelRatio || 1;
  var w = c.clientWidth, ht = c.clientHeight;
  c.width = Math.round(w * dpr);
  c.height = Math.round(ht * dpr);
  var g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, ht);
  var AXIS = 18, TOP = 14;
  var plotH = ht - AXIS - TOP;
  var totals = bucketTotals(h);
  var max = Math.max.apply(null, totals.concat([1]));
  var bw = w / h.buckets;
  var gap = bw >= 3 ? 1 : 0;
  var nonEmpty = 0;
  g.strokeStyle = '#263040';
  g.beginPath(); g.moveTo(0, TOP + 0.5); g.lineTo(w, TOP + 0.5); g.moveTo(0, TOP + plotH + 0.5); g.lineTo(w, TOP + plotH + 0.5); g.stroke();
  for (var b = 0; b < h.buckets; b++) {
    if (totals[b] > 0) nonEmpty++;
    var y = TOP + plotH;
    for (var k = 0; k < h.series.length; k++) {
      var v = h.series[k].counts[b];
      if (!v) continue;
      var px = v / max * plotH;
      g.fillStyle = colorOf(h.series[k].type);
      g.fillRect(b * bw, y - px, Math.max(1, bw - gap), px);
      y -= px;
    }
  }
  g.fillStyle = '#8a96a8';
  g.font = '11px system-ui, sans-serif';
  g.textBaseline = 'top';
  g.fillText(fmtInt(max) + ' per ' + fmtDuration(h.bucketMs) + ' bucket', 2, 0);
  var ticks = Math.max(2, Math.floor(w / 180));
  for (var i = 0; i <= ticks; i++) {
    var x = i / ticks * w;
    var label = fmtTime(h.from + (h.to - h.from) * i / ticks, false);
    var tw = g.measureText(label).width;
    g.fillText(label, Math.min(Math.max(0, x - tw / 2), w - tw), TOP + plotH + 4);
  }
  if (S.event) {
    var cx = (S.event.time - h.from) / (h.to - h.from) * w;
    g.fillStyle = '#ffffff';
    g.fillRect(Math.min(w - 2, Math.max(0, cx - 1)), TOP, 2, plotH);
  }
  c.dataset.buckets = String(h.buckets);
  c.dataset.nonempty = String(nonEmpty);
  c.dataset.total = String(h.total);
}

function renderLegend() {
  var ul = $('legend');
  ul.textContent = '';
  var picked = S.filter.types;
  S.hist.series.forEach(function (s) {
    var li = document.createElement('li');
    li.dataset.type = s.type;
    if (s.type !== 'other') {
      li.setAttribute('role', 'button');
      li.title = 'show only ' + s.type + ' (click again to show all)';
      if (picked.length > 0) li.className = picked.indexOf(s.type) >= 0 ? 'on' : 'off';
    }
    var sw = document.createElement('i');
    sw.style.background = colorOf(s.type);
    var name = document.createElement('b');
    name.textContent = s.type;
    li.appendChild(sw);
    li.appendChild(name);
    li.appendChild(document.createTextNode(fmtInt(s.total)));
    ul.appendChild(li);
  });
}

function bucketAt(ev) {
  var c = $('histogram');
  var r = c.getBoundingClientRect();
  var x = ev.clientX - r.left;
  var h = S.hist;
  return { x: x, w: r.width, b: Math.max(0, Math.min(h.buckets - 1, Math.floor(x / r.width * h.buckets))) };
}

$('histogram').addEventListener('mousemove', function (ev) {
  var h = S.hist;
  if (!h) return;
  var at = bucketAt(ev);
  var from = h.from + at.b * h.bucketMs;
  var lines = [fmtTime(from, false) + ' – ' + fmtTime(from + h.bucketMs, false)];
  var parts = h.series.map(function (s) { return { t: s.type, n: s.counts[at.b] }; })
    .filter(function (p) { return p.n > 0; }).sort(function (a, b) { return b.n - a.n; });
  parts.slice(0, 4).forEach(function (p) { lines.push(p.t + ' ' + fmtInt(p.n)); });
  if (parts.length === 0) lines.push('no events');
  $('hist-info').textContent = lines.join('\n');
});
$('histogram').addEventListener('mouseleave', function () { $('hist-info').textContent = ''; });
$('histogram').addEventListener('click', function (ev) {
  var h = S.hist;
  if (!h) return;
  var at = bucketAt(ev);
  jumpToTime(h.from + (h.to - h.from) * Math.max(0, at.x) / at.w);
});

// ---------------------------------------------------------------------------------------------
// The list and the selected event.

function rowPos(index) {
  for (var i = 0; i < S.rows.length; i++) if (S.rows[i].index === index) return i;
  return -1;
}

function span(cls, text) {
  var s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

function renderRows(center) {
  var ol = $('event-list');
  ol.textContent = '';
  var frag = document.createDocumentFragment();
  var more = function (text) { var li = document.createElement('li'); li.className = 'more'; li.textContent = text; frag.appendChild(li); };
  if (S.hasBefore) more(filtered() ? '⋯ earlier matches (↑)' : '⋯ earlier events (↑)');
  var selLi = null;
  S.rows.forEach(function (r) {
    var li = document.createElement('li');
    li.dataset.index = String(r.index);
    if (r.index === S.selected) { li.className = 'sel'; li.setAttribute('aria-selected', 'true'); selLi = li; }
    li.appendChild(span('idx', String(r.index)));
    li.appendChild(span('time', fmtTime(r.time, false)));
    var t = span('type', '');
    var sw = document.createElement('i');
    sw.style.background = S.colors[r.type] || OTHER_COLOR;
    t.appendChild(sw);
    t.appendChild(document.createTextNode(r.type));
    li.appendChild(t);
    li.appendChild(span('sess', r.session || ''));
    li.appendChild(span('preview', r.preview));
    frag.appendChild(li);
  });
  if (S.hasAfter) more(filtered() ? '⋯ later matches (↓)' : '⋯ later events (↓)');
  if (S.rows.length === 0 && filtered()) more(S.searchedAll ? 'no event matches the filters' : 'no match within 20,000 events of here: move elsewhere (scrubber, index, time) to search there');
  ol.appendChild(frag);
  if (selLi) selLi.scrollIntoView({ block: center ? 'center' : 'nearest' });
}

/** A string's characters, as JSON.stringify(JSON.parse(s), null, 2) would lay them out, numbers kept as written. */
function pretty(s) {
  var out = [];
  var depth = 0, i = 0, n = s.length, start, c;
  var ws = function (x) { return x === 32 || x === 9 || x === 10 || x === 13; };
  var nl = function () { out.push('\n' + '  '.repeat(depth)); };
  while (i < n) {
    c = s.charCodeAt(i);
    if (c === 34) {
      start = i++;
      while (i < n) { var d = s.charCodeAt(i); if (d === 92) i += 2; else { i++; if (d === 34) break; } }
      out.push(s.slice(start, i));
    } else if (c === 123 || c === 91) {
      var close = c === 123 ? 125 : 93, j = i + 1;
      while (j < n && ws(s.charCodeAt(j))) j++;
      if (s.charCodeAt(j) === close) { out.push(s[i] + s[j]); i = j + 1; continue; }
      depth++; out.push(s[i]); nl(); i++;
    } else if (c === 125 || c === 93) {
      depth = Math.max(0, depth - 1); nl(); out.push(s[i]); i++;
    } else if (c === 44) { out.push(','); nl(); i++; }
    else if (c === 58) { out.push(': '); i++; }
    else if (ws(c)) i++;
    else {
      start = i;
      while (i < n) {
        c = s.charCodeAt(i);
        if (c === 34 || c === 123 || c === 91 || c === 125 || c === 93 || c === 44 || c === 58 || ws(c)) break;
        i++;
      }
      out.push(s.slice(start, i));
    }
  }
  return out.join('');
}

function highlight(pre, text) {
  var re = /("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;
  var frag = document.createDocumentFragment();
  var last = 0, m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
    if (m[1] !== undefined) {
      frag.appendChild(span(m[2] ? 'k' : 's', m[1]));
      if (m[2]) frag.appendChild(document.createTextNode(m[2]));
    } else frag.appendChild(span(m[3] !== undefined ? 'n' : 'l', m[0]));
    last = re.lastIndex;
  }
  if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
  pre.appendChild(frag);
}

function renderEvent() {
  var ev = S.event;
  var meta = $('event-meta');
  meta.textContent = '';
  var b = document.createElement('b');
  b.textContent = 'index ' + fmtInt(ev.index);
  meta.appendChild(b);
  meta.appendChild(document.createTextNode(' · ' + fmtTime(ev.time, true) + ' UTC · ' + ev.type + ' · ' + ev.file +
    ' @ ' + fmtInt(ev.offset) + (typeof ev.bytes === 'number' ? ' · ' + fmtInt(ev.bytes) + ' bytes' : '') +
    (ev.truncated ? ' · cut at 16 MiB, open the file for the rest' : '')));
  var pre = $('event-json');
  pre.textContent = '';
  pre.dataset.index = String(ev.index);
  var text = pretty(ev.line);
  if (text.length <= HIGHLIGHT_MAX) highlight(pre, text);
  else pre.textContent = text;
  loadPair(ev.index);
}

/** A tool call and its result: a button to jump to the other one, with the time between them. */
function loadPair(index) {
  var box = $('pair');
  box.textContent = '';
  delete box.dataset.other;
  box.dataset.state = 'asking';
  api('pair', { index: index }).then(function (p) {
    if (!S.event || S.event.index !== index) return;
    if (p.toolCallId === null) { box.dataset.state = 'none'; return; }
    if (!p.other) {
      box.dataset.state = 'missing';
      box.textContent = (p.role === 'call' ? 'no result for ' : 'no call for ') + p.toolCallId + ' nearby';
      return;
    }
    box.dataset.state = 'found';
    var b = document.createElement('button');
    b.type = 'button';
    b.dataset.testid = 'pair-jump';
    b.textContent = (p.role === 'call' ? '→ result #' : '← call #') + p.other.index + ' (' + p.other.type + ')';
    b.addEventListener('click', function () { followNewest(false); select(p.other.index, { center: true }); });
    box.appendChild(b);
    box.dataset.other = String(p.other.index);
    var d = Math.abs(p.durationMs);
    box.appendChild(document.createTextNode(p.toolCallId + ' · ' + fmtDuration(d) + (p.role === 'call' ? ' later' : ' earlier')));
  }).catch(function () { /* the pair is a hint: its failure leaves the event shown */ });
}

/**
 * Selects the line with (or covering) this index: loads rows around it if needed, then its JSON.
 * opts.center scrolls it to the middle (a jump); opts.reload fetches the rows again (the set grew).
 */
function select(index, opts) {
  opts = opts || {};
  var seq = ++S.seq;
  var pos = rowPos(index);
  var need = opts.reload || pos < 0 || (pos < EDGE && S.hasBefore) || (pos >= S.rows.length - EDGE && S.hasAfter);
  var rows = need ? api('events', Object.assign({ around: index, limit: PAGE }, filterParams())) : Promise.resolve(null);
  return rows.then(function (r) {
    if (seq !== S.seq) return null;
    if (r) {
      S.rows = r.events; S.hasBefore = r.hasBefore; S.hasAfter = r.hasAfter; S.searchedAll = r.searchedAll !== false;
      if (r.focus !== null) index = r.focus;
    }
    if (S.rows.length === 0) {
      // Nothing to show (the filters match no event): say so, and keep no selection.
      S.selected = null;
      S.event = null;
      renderRows(false);
      $('event-meta').textContent = '';
      $('event-json').textContent = '';
      $('pair').textContent = '';
      return null;
    }
    S.selected = index;
    renderRows(opts.center);
    $('jump-index').value = String(index);
    if (!S.scrubTimer) $('scrubber').value = String(index);
    history.replaceState(null, '', location.pathname + location.search + '#i=' + index);
    return api('event', { index: index });
  }).then(function (ev) {
    if (!ev || seq !== S.seq) return;
    S.event = ev;
    $('jump-time').value = fmtTime(ev.time, true);
    renderEvent();
    drawHistogram();
    showError(null);
  }).catch(showError);
}

function jumpToTime(t) {
  return api('locate', { time: t }).then(function (r) {
    if (r.index === null) return;
    return select(r.index, { center: true });
  }).catch(showError);
}

// ---------------------------------------------------------------------------------------------
// Filters.

function filtered() { return S.filter.types.length > 0 || S.filter.session !== '' || S.filter.q !== ''; }

function filterParams() {
  var p = {};
  if (S.filter.types.length > 0) p.types = S.filter.types.join(',');
  if (S.filter.session !== '') p.session = S.filter.session;
  if (S.filter.q !== '') p.q = S.filter.q;
  return p;
}

function renderFilterInfo() {
  var parts = [];
  if (S.filter.types.length > 0) parts.push('types: ' + S.filter.types.join(', '));
  if (S.filter.session !== '') parts.push('session: ' + S.filter.session);
  if (S.filter.q !== '') parts.push('text: "' + S.filter.q + '"');
  $('filter-info').textContent = parts.length ? 'showing ' + parts.join(' · ') : '';
}

/** The list again, with the current filters, around the selected event. */
function refilter() {
  renderFilterInfo();
  if (S.hist) renderLegend();
  if (!S.summary || S.summary.lines === 0) return;
  select(S.selected !== null ? S.selected : S.summary.firstIndex, { center: true, reload: true });
}

function renderSessions() {
  var sel = $('session');
  var want = S.filter.session;
  var names = (S.summary.sessions || []).map(function (x) { return x.name; });
  if (sel.dataset.names === names.join('\u0000')) return;
  sel.dataset.names = names.join('\u0000');
  while (sel.options.length > 1) sel.remove(1);
  (S.summary.sessions || []).forEach(function (x) {
    var o = document.createElement('option');
    o.value = x.name;
    o.textContent = x.name + ' (' + fmtInt(x.count) + ')';
    sel.appendChild(o);
  });
  sel.value = want;
}

$('legend').addEventListener('click', function (e) {
  var li = e.target.closest('li[data-type]');
  if (!li || li.dataset.type === 'other') return;
  var t = li.dataset.type, at = S.filter.types.indexOf(t);
  if (at >= 0) S.filter.types.splice(at, 1); else S.filter.types.push(t);
  refilter();
});
$('session').addEventListener('change', function () { S.filter.session = $('session').value; refilter(); });
var searchTimer = 0;
$('search').addEventListener('input', function () {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(function () { S.filter.q = $('search').value.trim(); refilter(); }, SEARCH_SETTLE_MS);
});
$('clear-filters').addEventListener('click', function () {
  S.filter = { types: [], session: '', q: '' };
  $('search').value = '';
  $('session').value = '';
  refilter();
});

/** "Follow newest": on, the selection moves to each new last event; picking another event turns it off. */
function followNewest(on) { $('tail').checked = on; }
$('tail').addEventListener('change', function () {
  if ($('tail').checked && S.summary && S.summary.lines > 0) select(S.summary.lastIndex, { center: true, reload: true });
});

// ---------------------------------------------------------------------------------------------
// Controls.

function jumpIndex() {
  followNewest(false);
  var v = $('jump-index').value.trim();
  if (!/^\d+$/.test(v)) { showError(new Error('index: a whole number')); return; }
  select(Number(v), { center: true });
}
function jumpTime() {
  followNewest(false);
  var t = parseTime($('jump-time').value);
  if (t === null) { showError(new Error('time: epoch ms or YYYY-MM-DD HH:MM:SS.mmm (UTC)')); return; }
  jumpToTime(t);
}
$('jump-index-go').addEventListener('click', jumpIndex);
$('jump-time-go').addEventListener('click', jumpTime);
$('jump-index').addEventListener('keydown', function (e) { if (e.key === 'Enter') jumpIndex(); });
$('jump-time').addEventListener('keydown', function (e) { if (e.key === 'Enter') jumpTime(); });

$('scrubber').addEventListener('input', function () {
  var v = Number($('scrubber').value);
  $('jump-index').value = String(v);
  clearTimeout(S.scrubTimer);
  S.scrubTimer = setTimeout(function () { S.scrubTimer = 0; select(v, { center: true }); }, SCRUB_SETTLE_MS);
});

$('event-list').addEventListener('click', function (e) {
  var li = e.target.closest('li[data-index]');
  if (!li) return;
  followNewest(false);
  select(Number(li.dataset.index));
});

document.addEventListener('keydown', function (e) {
  var t = e.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'BUTTON')) return;
  if (S.selected === null || !S.summary) return;
  var step = { ArrowDown: 1, ArrowUp: -1, PageDown: PAGE_STEP, PageUp: -PAGE_STEP }[e.key];
  if (e.key === 'Home') { e.preventDefault(); select(S.summary.firstIndex, { center: true }); return; }
  if (e.key === 'End') { e.preventDefault(); select(S.summary.lastIndex, { center: true }); return; }
  if (!step) return;
  e.preventDefault();
  var pos = rowPos(S.selected);
  if (pos < 0) return;
  var np = Math.max(0, Math.min(S.rows.length - 1, pos + step));
  if (np !== pos) { followNewest(false); select(S.rows[np].index); }
});

var resizeTimer = 0;
window.addEventListener('resize', function () {
  clearTimeout(resizeTimer);
  // Buckets follow the width, so a new histogram is fetched once the resize settles.
  resizeTimer = setTimeout(function () { if (S.summary) loadHistogram().catch(showError); }, 200);
});

// ---------------------------------------------------------------------------------------------
// Live follow.

function poll() {
  if (document.hidden) { setTimeout(poll, POLL_MS); return; }
  api('summary').then(function (s) {
    var prev = S.summary;
    var grew = !prev || s.lines !== prev.lines || s.generation !== prev.generation;
    S.summary = s;
    renderSummary();
    renderSessions();
    if (!grew) return;
    var f = $('following');
    f.classList.add('grew');
    setTimeout(function () { f.classList.remove('grew'); }, POLL_MS / 2);
    var work = [loadHistogram()];
    if (s.lines > 0) {
      if ($('tail').checked) work.push(select(s.lastIndex, { center: true, reload: true }));
      else if (S.selected === null || s.generation !== prev.generation) work.push(select(s.firstIndex, { center: true, reload: true }));
      // Rows reach the old end: load them again so the new events show up below.
      else if (!S.hasAfter) work.push(select(S.selected, { reload: true }));
    }
    return Promise.all(work);
  }).catch(showError).then(function () { setTimeout(poll, POLL_MS); });
}

api('summary').then(function (s) {
  S.summary = s;
  renderSummary();
  renderSessions();
  var m = /^#i=(\d+)$/.exec(location.hash);
  // A live view follows the newest events, unless the address names an event to show.
  followNewest(s.follow && !m);
  if (s.lines === 0) return null;
  return loadHistogram().then(function () { return select(m ? Number(m[1]) : s.follow ? s.lastIndex : s.firstIndex, { center: true }); });
}).catch(showError).then(function () { setTimeout(poll, POLL_MS); });
})();
`;
