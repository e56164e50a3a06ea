/**
 * The guest's pages: server-rendered HTML, one small script and one style sheet served from
 * `/guest/` (CSP: same-origin scripts only, no eval, no inline code). The script builds the grid
 * with DOM calls and `textContent` only, so nothing a server sent is ever parsed as HTML.
 */

export const GUEST_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, body: string, withScript = false): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/guest/app.css">
</head>
<body>
${body}
${withScript ? '<script src="/guest/app.js"></script>' : ''}
</body>
</html>
`;
}

/** A page that says what went wrong (an expired link, no session...). */
export function messagePage(title: string, message: string, code?: string): string {
  return layout(
    title,
    `<main class="message"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${
      code ? `<p class="code">${escapeHtml(code)}</p>` : ''
    }</main>`,
  );
}

/** The sign-in page of a link: one button, so a mail scanner that opens links uses nothing. */
export function signInPage(token: string, email: string, server: string): string {
  return layout(
    'Sign in',
    `<main class="message"><h1>Pictures shared with ${escapeHtml(email)}</h1>
<p>${escapeHtml(server)} invites you to see the pictures shared with this address. The link works once.</p>
<form method="post" action="/guest/login"><input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit">Sign in</button></form></main>`,
  );
}

export function appPage(email: string): string {
  return layout(
    'Shared pictures',
    `<header><h1>Shared pictures</h1><span class="who">${escapeHtml(email)}</span>
<form method="post" action="/guest/logout"><button type="submit">Sign out</button></form></header>
<form id="search" role="search"><input type="search" name="q" placeholder="Search" aria-label="Search"><button type="submit">Search</button></form>
<p id="sources" aria-live="polite"></p>
<form id="batch" method="post" action="/guest/api/archive">
<div id="grid"></div>
<p class="actions"><button type="button" id="more" hidden>More</button>
<button type="submit" id="download" disabled>Download selected</button> <span id="count"></span></p>
</form>`,
    true,
  );
}

export const APP_CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
header{display:flex;gap:1em;align-items:center;padding:.6em 1em;background:#222;color:#eee}
header h1{font-size:1.1em;margin:0;flex:1}header form{margin:0}
#search{padding:1em;display:flex;gap:.5em}#search input{flex:1;padding:.4em}
#sources{padding:0 1em;color:#666;margin:0}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:1em;padding:1em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em;display:flex;flex-direction:column;gap:.3em}
.card img{width:100%;height:140px;object-fit:contain;background:#eee}
.card .name{font-weight:600;overflow-wrap:anywhere}.card .server{color:#666;font-size:.85em}
.actions{padding:0 1em 2em}.message{max-width:36em;margin:4em auto;padding:0 1em}.code{color:#888;font-family:monospace}
`;

export const APP_JS = `'use strict';
(function () {
  var grid = document.getElementById('grid');
  var more = document.getElementById('more');
  var download = document.getElementById('download');
  var count = document.getElementById('count');
  var sources = document.getElementById('sources');
  var next = null;
  var query = '';

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function selected() {
    return grid.querySelectorAll('input[name="uri"]:checked').length;
  }

  function update() {
    var n = selected();
    download.disabled = n === 0;
    count.textContent = n ? n + ' selected' : '';
  }

  function card(item) {
    var box = el('label', 'card');
    if (item.thumbnail) {
      var img = el('img');
      img.src = item.thumbnail;
      img.alt = item.filename;
      img.loading = 'lazy';
      box.appendChild(img);
    }
    var check = el('input');
    check.type = 'checkbox';
    check.name = 'uri';
    check.value = item.uri;
    check.addEventListener('change', update);
    var title = (item.metadata && item.metadata.title) || item.filename;
    var line = el('span', 'name');
    line.appendChild(check);
    line.appendChild(document.createTextNode(' ' + title));
    box.appendChild(line);
    box.appendChild(el('span', 'server', item.local ? item.server + ' (this server)' : item.server));
    return box;
  }

  function load(reset) {
    var params = new URLSearchParams();
    if (query) params.set('q', query);
    if (!reset && next) params.set('cursor', next);
    fetch('/guest/api/assets?' + params.toString(), { credentials: 'same-origin' })
      .then(function (r) {
        if (r.status === 401) { location.reload(); throw new Error('signed out'); }
        return r.json();
      })
      .then(function (page) {
        if (reset) grid.textContent = '';
        (page.items || []).forEach(function (item) { grid.appendChild(card(item)); });
        next = page.next;
        more.hidden = !next;
        var failed = (page.sources || []).filter(function (s) { return s.state !== 'ok'; });
        sources.textContent = failed.length
          ? failed.map(function (s) { return s.origin + ': ' + s.state; }).join(', ') + ' (not shown)'
          : '';
        update();
      })
      .catch(function (e) { sources.textContent = String(e.message || e); });
  }

  document.getElementById('search').addEventListener('submit', function (event) {
    event.preventDefault();
    query = event.target.elements.q.value;
    load(true);
  });
  more.addEventListener('click', function () { load(false); });
  load(true);
})();
`;
