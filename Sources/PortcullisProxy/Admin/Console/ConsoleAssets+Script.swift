extension ConsoleAssets {
    /// The console's one script. Every value reaches the page through `textContent` or
    /// attributes set by DOM calls, never as markup.
    static let script = #"""
'use strict';
(function () {
  const state = { csrf: null, admin: null, roles: null, clients: null, live: null };
  const $ = (id) => document.getElementById(id);

  // el('td', {class: 'num', 'data-label': 'Roles'}, 'text', childNode, ...): text always as text.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'onclick' || name === 'onsubmit' || name === 'onchange') node.addEventListener(name.slice(2), value);
      else if (name === 'text') node.textContent = String(value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function say(text) { $('status').textContent = text || ''; }

  async function call(method, path, body) {
    const headers = { 'Accept': 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    let response;
    try {
      response = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      return { status: 0, data: { error: 'network', error_description: 'the gateway did not answer' } };
    }
    let data = null;
    const text = await response.text();
    if (text) { try { data = JSON.parse(text); } catch (e) { data = { error: 'bad_response', error_description: text.slice(0, 200) }; } }
    if (response.status === 401 && data && data.error === 'not_signed_in' && path !== '/ui/session') {
      state.csrf = null; showSignIn('Your session ended: sign in again.');
    }
    return { status: response.status, data: data || {} };
  }
  const api = (method, path, body) => call(method, '/ui/api/v1' + path, body);
  const describe = (result) => (result.data && (result.data.error_description || result.data.error)) || ('HTTP ' + result.status);
  const enc = encodeURIComponent;

  function when(value) {
    if (value === null || value === undefined || value === '') return el('span', { class: 'muted' }, 'never');
    const date = new Date(typeof value === 'number' ? value : value);
    if (isNaN(date.getTime())) return String(value);
    const text = date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    return el('time', { datetime: date.toISOString(), title: text }, text);
  }
  function listText(list, none) {
    if (list === null || list === undefined) return el('span', { class: 'muted' }, none);
    if (list.length === 0) return el('span', { class: 'muted' }, 'none');
    return list.join(', ');
  }
  // A field this gateway's API does not report (an older gateway): a dash, explained in words.
  function notReported() { return el('abbr', { class: 'muted', title: 'not reported by this gateway' }, '\u2014', el('span', { class: 'sr' }, ' not reported by this gateway')); }
  function lastUsed(client, counts) {
    if (client.last_used) return when(client.last_used);
    return counts && counts.last_request_ms ? when(counts.last_request_ms) : when(null);
  }
  function stateBadge(enabled) {
    return enabled ? el('span', { class: 'state ok' }, 'Enabled') : el('span', { class: 'state off' }, 'Disabled');
  }
  function limitsText(limits) {
    if (limits === undefined) return notReported();
    if (!limits || Object.keys(limits).filter((k) => k !== 'sources').length === 0) return el('span', { class: 'muted' }, 'none');
    const parts = [];
    if (limits.rate) parts.push('rate ' + limits.rate + (limits.burst ? ' (burst ' + limits.burst + ')' : ''));
    if (limits.quota) parts.push('quota ' + limits.quota);
    if (limits.concurrency) parts.push('concurrency ' + limits.concurrency);
    return parts.join(', ');
  }
  function secretExpiry(client) {
    if (!client.secrets) return client.token_lifetime === null ? el('span', { class: 'muted' }, 'outside issuer') : notReported();
    const current = client.secrets.find((s) => s.state === 'current');
    const grace = client.secrets.filter((s) => s.state === 'grace');
    const parts = [current && current.expires ? when(current.expires) : el('span', { class: 'muted' }, 'no expiry')];
    for (const g of grace) parts.push(el('div', { class: 'hint' }, 'previous secret until ', when(g.expires)));
    return parts;
  }

  // ---------- Sign-in and navigation ----------

  function showSignIn(message) {
    $('nav').hidden = true; $('who').hidden = true; $('signout').hidden = true;
    stopLive();
    const input = el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true });
    const form = el('form', { class: 'panel signin', id: 'signin-form', onsubmit: async (event) => {
      event.preventDefault();
      const result = await call('POST', '/ui/session', { token: input.value });
      input.value = '';
      if (result.status !== 200) { say('Sign-in refused: ' + describe(result)); input.focus(); return; }
      signedIn(result.data); say('');
      if (!location.hash || location.hash === '#/') location.hash = '#/clients'; else route();
    } },
      el('h1', {}, 'Sign in to the Portcullis console'),
      el('label', { for: 'token' }, 'Admin token ', el('span', { class: 'hint' }, '(the contents of admin.token_file)')),
      input,
      el('div', { class: 'toolbar' }, el('button', { type: 'submit', class: 'primary', id: 'signin' }, 'Sign in')));
    clear($('main')).append(form);
    if (message) say(message);
    input.focus();
  }

  function signedIn(session) {
    state.csrf = session.csrf_token; state.admin = session.admin;
    $('nav').hidden = false; $('signout').hidden = false; $('who').hidden = false;
    $('who').textContent = 'Signed in as ' + session.admin;
  }

  $('signout').addEventListener('click', async () => {
    await call('DELETE', '/ui/session');
    state.csrf = null; location.hash = '#/'; showSignIn('Signed out.');
  });

  function stopLive() { if (state.live) { state.live.close(); state.live = null; } }

  async function route() {
    if (!state.csrf) return;
    stopLive();
    const hash = location.hash || '#/clients';
    const parts = hash.slice(2).split('/').map(decodeURIComponent);
    for (const link of document.querySelectorAll('nav a')) {
      if (link.getAttribute('href') === '#/' + parts[0]) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
    }
    const main = clear($('main'));
    if (parts[0] === 'clients' && parts[1]) await clientPage(main, parts[1]);
    else if (parts[0] === 'roles') await rolesPage(main);
    else if (parts[0] === 'explain') await explainPage(main);
    else if (parts[0] === 'audit') await auditPage(main);
    else await clientsPage(main);
    const heading = main.querySelector('h1');
    if (heading) { heading.setAttribute('tabindex', '-1'); }
  }
  window.addEventListener('hashchange', () => { say(''); route(); });

  // ---------- Dialogs ----------

  function openDialog(title, body, buttons) {
    const dialog = clear($('dialog'));
    dialog.append(el('h2', { id: 'dialog-title' }, title), ...body,
      el('div', { class: 'buttons' }, ...buttons, el('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel')));
    dialog.showModal();
    const first = dialog.querySelector('input, select, textarea, button');
    if (first) first.focus();
    return dialog;
  }

  function showSecret(container, id, secret, what) {
    const code = el('code', { id: 'secret-value' }, secret);
    const copy = el('button', { type: 'button', id: 'copy-secret', onclick: async () => {
      try { await navigator.clipboard.writeText(secret); copy.textContent = 'Copied'; }
      catch (e) { const range = document.createRange(); range.selectNodeContents(code); const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range); copy.textContent = 'Selected: press Ctrl+C'; }
    } }, 'Copy');
    const panel = el('section', { class: 'panel secret', id: 'secret-panel', role: 'alert', 'aria-labelledby': 'secret-title' },
      el('h2', { id: 'secret-title' }, what + ' for ' + id),
      el('p', {}, el('strong', {}, 'Copy this secret now: it is shown only once. '), 'The gateway keeps only its hash; if it is lost, rotate again.'),
      el('p', {}, 'client_id: ', el('code', { id: 'secret-client' }, id)), code,
      el('div', { class: 'toolbar' }, copy, el('button', { type: 'button', onclick: () => panel.remove() }, 'I have stored it')));
    container.prepend(panel);
    copy.focus();
  }

  function csvList(text) { return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean); }

  async function loadRoles() {
    const result = await api('GET', '/roles');
    state.roles = result.status === 200 ? result.data.roles : [];
    return state.roles;
  }

  function roleChecks(roles, chosen, name) {
    return el('fieldset', { class: 'checks' }, el('legend', {}, 'Roles'),
      roles.map((role) => el('label', {}, el('input', { type: 'checkbox', name, value: role.name, checked: chosen.includes(role.name) }), role.name)));
  }
  const checked = (form, name) => Array.from(form.querySelectorAll('input[name="' + name + '"]:checked')).map((i) => i.value);

  // ---------- Clients ----------

  async function clientsPage(main) {
    main.append(el('h1', {}, 'Clients'));
    const area = el('div', { id: 'secret-area' });
    const toolbar = el('div', { class: 'toolbar' },
      el('button', { type: 'button', class: 'primary', id: 'new-client', onclick: () => newClientDialog(area) }, 'New client'),
      el('button', { type: 'button', onclick: () => route() }, 'Refresh'));
    main.append(toolbar, area);
    const [clients, summary] = await Promise.all([api('GET', '/clients'), call('GET', '/ui/live/summary')]);
    await loadRoles();
    if (clients.status !== 200) { main.append(el('p', { class: 'panel error' }, 'Cannot list clients: ' + describe(clients))); return; }
    state.clients = clients.data.clients;
    const counts = (summary.status === 200 && summary.data.clients) || {};
    const headers = ['Client', 'Status', 'Roles', 'Allowed IPs', 'Limits', 'Last used', 'Last token', 'Secret expires', 'Requests', 'Errors', 'Actions'];
    const table = el('table', { class: 'cards', id: 'clients' },
      el('caption', { class: 'muted' }, state.clients.length + ' clients. Requests and errors (status 400 and above): the last hour, as this gateway saw them. \u2014: not reported by this gateway.'),
      el('thead', {}, el('tr', {}, headers.map((h, i) => el('th', { scope: 'col', class: i === 8 || i === 9 ? 'num' : null }, h)))));
    const body = el('tbody');
    for (const client of state.clients) {
      const c = counts[client.id] || { requests: 0, errors: 0 };
      const cells = [
        [el('a', { href: '#/clients/' + enc(client.id), class: 'client-link' }, client.id), client.name && client.name !== client.id ? el('div', { class: 'hint client-name' }, client.name) : null],
        stateBadge(client.enabled),
        listText(client.roles, 'none'),
        listText(client.allowed_ips, 'any address'),
        limitsText(client.limits),
        lastUsed(client, counts[client.id]),
        [when(client.last_redeemed), c.last_jti ? el('div', { class: 'hint mono' }, 'jti ' + c.last_jti) : null],
        secretExpiry(client),
        String(c.requests),
        c.errors ? el('span', { class: 'state warn' }, String(c.errors)) : '0',
        clientActions(client, area),
      ];
      body.append(el('tr', { 'data-client': client.id }, cells.map((cell, i) =>
        el(i === 0 ? 'th' : 'td', { 'data-label': headers[i], scope: i === 0 ? 'row' : null, class: i === 8 || i === 9 ? 'num' : null }, cell))));
    }
    table.append(body);
    main.append(el('div', { class: 'table-wrap' }, table));
  }

  function clientActions(client, area) {
    const builtin = client.token_lifetime !== null && client.token_lifetime !== undefined;
    return el('div', { class: 'actions' },
      el('button', { type: 'button', 'data-action': 'edit', 'aria-label': 'Edit ' + client.id, onclick: () => editDialog(client) }, 'Edit'),
      builtin ? el('button', { type: 'button', 'data-action': 'rotate', 'aria-label': 'Rotate the secret of ' + client.id, onclick: () => rotateDialog(client, area) }, 'Rotate') : null,
      el('button', { type: 'button', 'data-action': client.enabled ? 'disable' : 'enable', 'aria-label': (client.enabled ? 'Disable ' : 'Enable ') + client.id,
        onclick: () => simpleAction(client.enabled ? 'disable' : 'enable', client) }, client.enabled ? 'Disable' : 'Enable'),
      el('button', { type: 'button', 'data-action': 'unlock', 'aria-label': 'Unlock ' + client.id, onclick: () => simpleAction('unlock', client) }, 'Unlock'),
      el('button', { type: 'button', class: 'danger', 'data-action': 'delete', 'aria-label': 'Delete ' + client.id, onclick: () => deleteDialog(client) }, 'Delete'));
  }

  async function simpleAction(action, client) {
    const result = await api('POST', '/clients/' + enc(client.id) + '/' + action);
    if (result.status >= 300) { say(action + ' ' + client.id + ' failed: ' + describe(result)); return; }
    await route();
    say(client.id + ': ' + (action === 'unlock' ? (result.data.had_failures ? 'unlocked' : 'was not locked out') : action + 'd'));
  }

  function newClientDialog(area) {
    const roles = state.roles || [];
    const form = el('form', { id: 'new-client-form' },
      el('label', { for: 'nc-id' }, 'Client id'), el('input', { id: 'nc-id', name: 'id', required: true, autocomplete: 'off' }),
      el('label', { for: 'nc-name' }, 'Name ', el('span', { class: 'hint' }, '(shown in logs)')), el('input', { id: 'nc-name', name: 'name', autocomplete: 'off' }),
      roleChecks(roles, [], 'nc-role'),
      el('label', { for: 'nc-ips' }, 'Allowed IPs ', el('span', { class: 'hint' }, '(addresses or CIDR blocks; empty for any)')), el('input', { id: 'nc-ips', name: 'ips', autocomplete: 'off' }),
      el('label', { for: 'nc-lifetime' }, 'Token lifetime ', el('span', { class: 'hint' }, '(e.g. 15m; empty for the issuer\u2019s)')), el('input', { id: 'nc-lifetime', name: 'lifetime', autocomplete: 'off' }));
    const create = el('button', { type: 'button', class: 'primary', id: 'nc-create', onclick: async () => {
      if (!form.reportValidity()) return;
      const body = { id: $('nc-id').value.trim(), roles: checked(form, 'nc-role') };
      if ($('nc-name').value.trim()) body.name = $('nc-name').value.trim();
      if ($('nc-ips').value.trim()) body.allowed_ips = csvList($('nc-ips').value);
      if ($('nc-lifetime').value.trim()) body.token_lifetime = $('nc-lifetime').value.trim();
      if (body.roles.length === 0) { say('Choose at least one role.'); return; }
      const result = await api('POST', '/clients', body);
      if (result.status !== 201) { say('Cannot create ' + body.id + ': ' + describe(result)); return; }
      $('dialog').close();
      await route();
      const fresh = $('secret-area') || $('main');
      if (result.data.client_secret) showSecret(fresh, body.id, result.data.client_secret, 'New client secret');
      say('Created ' + body.id + '.');
    } }, 'Create');
    openDialog('New client', [form], [create]);
  }

  function editDialog(client) {
    const roles = state.roles || [];
    const form = el('form', { id: 'edit-form' },
      el('label', { for: 'ed-name' }, 'Name'), el('input', { id: 'ed-name', value: client.name || '' }),
      roleChecks(roles, client.roles || [], 'ed-role'),
      el('label', { for: 'ed-ips' }, 'Allowed IPs ', el('span', { class: 'hint' }, '(empty for any address)')), el('input', { id: 'ed-ips', value: (client.allowed_ips || []).join(', ') }),
      el('label', { for: 'ed-secret-lifetime' }, 'Secret lifetime ', el('span', { class: 'hint' }, '(e.g. 90d; empty for the issuer\u2019s)')), el('input', { id: 'ed-secret-lifetime', value: client.secret_lifetime || '' }),
      el('h2', {}, 'Limits'),
      el('div', { class: 'form-row' },
        el('div', {}, el('label', { for: 'ed-rate' }, 'Rate ', el('span', { class: 'hint' }, '(10/s)')), el('input', { id: 'ed-rate', size: 8, value: (client.limits && client.limits.rate) || '' })),
        el('div', {}, el('label', { for: 'ed-burst' }, 'Burst'), el('input', { id: 'ed-burst', size: 5, inputmode: 'numeric', value: (client.limits && client.limits.burst) || '' })),
        el('div', {}, el('label', { for: 'ed-quota' }, 'Quota ', el('span', { class: 'hint' }, '(10000/day)')), el('input', { id: 'ed-quota', size: 10, value: (client.limits && client.limits.quota) || '' })),
        el('div', {}, el('label', { for: 'ed-concurrency' }, 'Concurrency'), el('input', { id: 'ed-concurrency', size: 5, inputmode: 'numeric', value: (client.limits && client.limits.concurrency) || '' }))));
    const save = el('button', { type: 'button', class: 'primary', id: 'ed-save', onclick: async () => {
      const body = { name: $('ed-name').value.trim() || client.id, roles: checked(form, 'ed-role') };
      const ips = csvList($('ed-ips').value);
      body.allowed_ips = ips.length ? ips : null;
      body.secret_lifetime = $('ed-secret-lifetime').value.trim() || null;
      const messages = [];
      const patched = await api('PATCH', '/clients/' + enc(client.id), body);
      if (patched.status === 404 && patched.data.error !== 'not_found' || patched.status === 405) messages.push('editing needs a newer gateway (no PATCH /api/v1/clients/{id} here)');
      else if (patched.status >= 300) messages.push('not saved: ' + describe(patched));
      const limits = {};
      if ($('ed-rate').value.trim()) limits.rate = $('ed-rate').value.trim();
      if ($('ed-burst').value.trim()) limits.burst = Number($('ed-burst').value.trim());
      if ($('ed-quota').value.trim()) limits.quota = $('ed-quota').value.trim();
      if ($('ed-concurrency').value.trim()) limits.concurrency = Number($('ed-concurrency').value.trim());
      const hadLimits = client.limits && Object.keys(client.limits).some((k) => k !== 'sources');
      if (Object.keys(limits).length || hadLimits) {
        const put = await api('PUT', '/clients/' + enc(client.id) + '/limits', limits);
        if (put.status === 405 || put.status === 404) messages.push('limits cannot be set here (no PUT /api/v1/clients/{id}/limits on this gateway)');
        else if (put.status >= 300) messages.push('limits not saved: ' + describe(put));
      }
      $('dialog').close();
      await route();
      say(messages.length ? client.id + ': ' + messages.join('; ') : 'Saved ' + client.id + '.');
    } }, 'Save');
    openDialog('Edit ' + client.id, [form], [save]);
  }

  function rotateDialog(client, area) {
    const select = el('select', { id: 'rotate-grace' },
      el('option', { value: '' }, 'none: the old secret stops at once'),
      el('option', { value: '1h' }, '1 hour'), el('option', { value: '24h', selected: true }, '24 hours'),
      el('option', { value: '7d' }, '7 days'));
    const go = el('button', { type: 'button', class: 'primary', id: 'rotate-confirm', onclick: async () => {
      const body = select.value ? { grace: select.value } : {};
      const result = await api('POST', '/clients/' + enc(client.id) + '/client-credentials', body);
      $('dialog').close();
      if (result.status !== 200) { say('Rotation of ' + client.id + ' failed: ' + describe(result)); return; }
      await route();
      const target = $('secret-area') || $('main');
      showSecret(target, client.id, result.data.client_secret, 'New secret');
      const graced = result.data.secrets && result.data.secrets.some((s) => s.state === 'grace');
      say('Rotated ' + client.id + (select.value ? (graced ? '; the previous secret works for ' + select.value + ' more.' : '; this gateway does not keep a grace period: the previous secret no longer works.') : '.'));
    } }, 'Rotate');
    openDialog('Rotate the secret of ' + client.id, [
      el('p', {}, 'A new secret is made and shown once. Tokens already issued keep working until they expire, unless the old secret stops at once.'),
      el('label', { for: 'rotate-grace' }, 'Grace period for the previous secret'), select], [go]);
  }

  function deleteDialog(client) {
    const input = el('input', { id: 'delete-confirm-id', autocomplete: 'off' });
    const go = el('button', { type: 'button', class: 'danger', id: 'delete-confirm', onclick: async () => {
      if (input.value !== client.id) { say('Type the client id exactly to delete it.'); input.focus(); return; }
      const result = await api('DELETE', '/clients/' + enc(client.id));
      $('dialog').close();
      if (result.status >= 300) { say('Cannot delete ' + client.id + ': ' + describe(result)); return; }
      location.hash = '#/clients'; await route(); say('Deleted ' + client.id + '.');
    } }, 'Delete');
    openDialog('Delete ' + client.id + '?', [
      el('p', {}, 'Its secret and its tokens stop working at once. This cannot be undone.'),
      el('label', { for: 'delete-confirm-id' }, 'Type ', el('code', {}, client.id), ' to confirm'), input], [go]);
  }

  // ---------- One client ----------

  async function clientPage(main, id) {
    const result = await api('GET', '/clients/' + enc(id));
    main.append(el('p', {}, el('a', { href: '#/clients' }, '\u2190 All clients')));
    if (result.status !== 200) { main.append(el('h1', {}, id), el('p', { class: 'panel error' }, describe(result))); return; }
    const [summary, minutes] = await Promise.all([call('GET', '/ui/live/summary'), call('GET', '/ui/live/clients/' + enc(id) + '/minutes'), loadRoles()]);
    const counts = summary.status === 200 && summary.data.clients ? summary.data.clients[id] : null;
    const client = result.data;
    main.append(el('h1', {}, 'Client ', el('span', { class: 'mono' }, client.id)));
    const area = el('div', { id: 'secret-area' });
    const facts = el('div', {}, el('dl', { class: 'facts' },
      el('dt', {}, 'Name'), el('dd', { id: 'client-name' }, client.name),
      el('dt', {}, 'Status'), el('dd', {}, stateBadge(client.enabled)),
      el('dt', {}, 'Issuer'), el('dd', {}, client.issuer),
      el('dt', {}, 'Roles'), el('dd', {}, listText(client.roles, 'none')),
      el('dt', {}, 'Allowed IPs'), el('dd', {}, listText(client.allowed_ips, 'any address')),
      el('dt', {}, 'Limits'), el('dd', {}, limitsText(client.limits)),
      el('dt', {}, 'Token lifetime'), el('dd', {}, client.token_lifetime || el('span', { class: 'muted' }, 'set by the outside issuer')),
      el('dt', {}, 'Secret expires'), el('dd', {}, secretExpiry(client)),
      el('dt', {}, 'Last token issued'), el('dd', {}, when(client.last_redeemed)),
      el('dt', {}, 'Last used'), el('dd', {}, lastUsed(client, counts))),
      el('div', { class: 'toolbar' }, clientActions(client, area)));
    const chartArea = el('div', { id: 'chart-area' }, el('h2', { id: 'chart-title' }, 'Requests by status, last hour'));
    main.append(area, el('div', { class: 'split' }, facts, chartArea));
    if (minutes.status === 200 && minutes.data.available) chart(chartArea, minutes.data);
    else chartArea.append(el('p', { class: 'muted' }, 'This gateway keeps no recent counts.'));

    main.append(el('h2', {}, 'Live access log'));
    const status = el('p', { class: 'hint', id: 'live-status' }, 'Connecting\u2026');
    const log = el('ol', { class: 'log', id: 'live-log', 'aria-live': 'polite', 'aria-relevant': 'additions' });
    main.append(status, log);
    const source = new EventSource('/ui/live/clients/' + enc(id) + '/log');
    state.live = source;
    source.onopen = () => { status.textContent = 'Live: new requests appear at the top.'; };
    source.onerror = () => { status.textContent = 'Reconnecting\u2026'; };
    source.addEventListener('signed-out', () => { source.close(); showSignIn('Your session ended: sign in again.'); });
    source.onmessage = (event) => {
      let line; try { line = JSON.parse(event.data); } catch (e) { return; }
      // Newest first by time: the gateway's loops hand their lines over in batches.
      const item = logLine(line);
      const later = Array.from(log.children).find((li) => li.dataset.ts <= item.dataset.ts);
      log.insertBefore(item, later || null);
      while (log.children.length > 200) log.removeChild(log.lastChild);
    };

    main.append(el('h2', {}, 'Audit history'));
    const audit = el('div', { id: 'client-audit' });
    main.append(audit);
    await auditInto(audit, 'client=' + enc(id));
  }

  function logLine(line) {
    const parts = [line.ts, line.method, line.path, String(line.status), line.decision === 'deny' ? 'DENIED ' + line.reason : line.reason];
    if (line.src_ip) parts.push('from ' + line.src_ip);
    if (line.jti) parts.push('jti ' + line.jti);
    if (line.rule) parts.push('rule ' + line.rule);
    return el('li', { class: line.decision === 'deny' ? 'deny' : 'allow', 'data-status': line.status, 'data-reason': line.reason, 'data-ts': line.ts }, parts.join('  '));
  }

  function chart(area, data) {
    const NS = 'http://www.w3.org/2000/svg';
    const svgEl = (tag, attrs) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v)); return n; };
    const rows = data.minutes;
    const max = Math.max(1, ...rows.map((r) => r.reduce((a, b) => a + b, 0)));
    const width = 720, height = 180, left = 36, bottom = 22, barW = (width - left - 4) / 60;
    const totals = [0, 0, 0, 0, 0];
    const svg = svgEl('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'chart', role: 'img', 'aria-labelledby': 'chart-title chart-summary' });
    svg.append(svgEl('line', { x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: '#57606a' }));
    const top = svgEl('text', { x: 2, y: 12, 'font-size': 11, fill: '#57606a' }); top.textContent = String(max); svg.append(top);
    const zero = svgEl('text', { x: 2, y: height - bottom, 'font-size': 11, fill: '#57606a' }); zero.textContent = '0'; svg.append(zero);
    for (const [label, x] of [['-60 min', left], ['-30', left + 30 * barW], ['now', width - 28]]) {
      const t = svgEl('text', { x, y: height - 6, 'font-size': 11, fill: '#57606a' }); t.textContent = label; svg.append(t);
    }
    rows.forEach((counts, i) => {
      let y = height - bottom;
      // Order from the bottom: 2xx, 3xx, 4xx, 5xx, 1xx.
      for (const c of [1, 2, 3, 4, 0]) {
        totals[c] += counts[c];
        if (!counts[c]) continue;
        const h = counts[c] / max * (height - bottom - 16);
        y -= h;
        const rect = svgEl('rect', { x: left + i * barW + 1, y, width: Math.max(1, barW - 2), height: h, class: 'c' + (c + 1) });
        const title = svgEl('title', {}); title.textContent = counts[c] + ' \u00d7 ' + (c + 1) + 'xx, ' + (59 - i) + ' min ago';
        rect.append(title); svg.append(rect);
      }
    });
    const names = ['1xx', '2xx', '3xx', '4xx', '5xx'];
    const summary = names.map((n, c) => n + ': ' + totals[c]).join(', ');
    area.append(svg,
      el('div', { class: 'legend' }, [1, 2, 3, 4].map((c) => el('span', {}, el('span', { class: 'swatch c' + (c + 1), 'aria-hidden': 'true' }), names[c] + ' ' + totals[c]))),
      el('p', { class: 'hint', id: 'chart-summary' }, 'Last 60 minutes, stacked from the bottom 2xx, 3xx, 4xx, 5xx. Totals: ' + summary + '.'));
  }

  // ---------- Roles ----------

  async function rolesPage(main) {
    main.append(el('h1', {}, 'Roles and permissions'));
    const [roles, clients, privileges] = await Promise.all([api('GET', '/roles'), api('GET', '/clients'), api('GET', '/privileges')]);
    if (roles.status !== 200) { main.append(el('p', { class: 'panel error' }, describe(roles))); return; }
    const holders = {};
    for (const c of (clients.data.clients || [])) for (const r of c.roles) (holders[r] = holders[r] || []).push(c.id);
    const ruleRows = (kind, rules) => rules.map((rule) => el('tr', {}, el('td', {}, kind), el('td', {}, rule.methods ? rule.methods.join(', ') : 'any method'), el('td', { class: 'mono' }, rule.paths.join('  '))));
    for (const role of roles.data.roles) {
      const section = el('section', { class: 'panel', 'data-role': role.name },
        el('h2', {}, role.name), role.description ? el('p', {}, role.description) : null,
        el('p', {}, el('strong', {}, 'Held by: '), holders[role.name] ? holders[role.name].map((id, i) => [i ? ', ' : '', el('a', { href: '#/clients/' + enc(id) }, id)]) : el('span', { class: 'muted' }, 'no client')));
      const rows = [...ruleRows('allow', role.allow), ...ruleRows('deny', role.deny)];
      if (rows.length) section.append(el('table', { class: 'rules' }, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Rule'), el('th', { scope: 'col' }, 'Methods'), el('th', { scope: 'col' }, 'Paths'))), el('tbody', {}, rows)));
      if (role.permissions) section.append(el('p', {}, 'Permissions: ', role.permissions.include.join(', ') || 'none', role.permissions.exclude.length ? ' (except ' + role.permissions.exclude.join(', ') + ')' : ''));
      if (role.tenants) section.append(el('p', {}, 'Tenants: ', role.tenants.allow ? role.tenants.allow.join(', ') : 'any', role.tenants.block.length ? '; blocked: ' + role.tenants.block.join(', ') : ''));
      main.append(section);
    }
    main.append(el('h2', {}, 'Permission catalogue'));
    const list = (privileges.data && privileges.data.privileges) || [];
    if (!list.length) { main.append(el('p', { class: 'muted' }, 'No permission catalogue is configured.')); return; }
    const roleFor = (name) => roles.data.roles.filter((r) => r.permissions && r.permissions.include.some((p) => p === name || p === '*' || (p.endsWith('*') && name.startsWith(p.slice(0, -1)))) && !r.permissions.exclude.includes(name)).map((r) => r.name);
    main.append(el('table', { class: 'cards' }, el('thead', {}, el('tr', {}, ['Permission', 'Operations', 'Roles'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, list.map((p) => el('tr', {}, el('td', { 'data-label': 'Permission', class: 'mono' }, p.name),
        el('td', { 'data-label': 'Operations', class: 'mono' }, p.operations.map((o) => o.methods.join(',') + ' ' + o.path).join('  ')),
        el('td', { 'data-label': 'Roles' }, roleFor(p.name).join(', ') || '\u2014'))))));
  }

  // ---------- Explain ----------

  async function explainPage(main) {
    main.append(el('h1', {}, 'Explain a decision'),
      el('p', { class: 'hint' }, 'What the gateway would decide for a request by a client with a valid token: the same decision function as the proxy.'));
    const clients = await api('GET', '/clients');
    const ids = (clients.data.clients || []).map((c) => c.id);
    const field = (id, label, input) => el('div', {}, el('label', { for: id }, label), input);
    const form = el('form', { class: 'panel', id: 'explain-form' },
      el('div', { class: 'form-row' },
        field('ex-client', 'Client', el('input', { id: 'ex-client', list: 'ex-clients', required: true, autocomplete: 'off', value: ids[0] || '' })),
        el('datalist', { id: 'ex-clients' }, ids.map((id) => el('option', { value: id }))),
        field('ex-method', 'Method', el('select', { id: 'ex-method' }, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'].map((m) => el('option', { value: m }, m)))),
        field('ex-path', 'Path', el('input', { id: 'ex-path', required: true, size: 36, value: '/', autocomplete: 'off' })),
        field('ex-ip', 'Address', el('input', { id: 'ex-ip', size: 16, placeholder: 'optional', autocomplete: 'off' })),
        field('ex-tenant', 'Tenant', el('input', { id: 'ex-tenant', size: 20, placeholder: 'optional', autocomplete: 'off' }))),
      el('div', { class: 'toolbar' }, el('button', { type: 'submit', class: 'primary', id: 'ex-submit' }, 'Explain')));
    const out = el('div', { id: 'explain-result', 'aria-live': 'polite' });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { client: $('ex-client').value.trim(), method: $('ex-method').value, path: $('ex-path').value.trim(), ip: $('ex-ip').value.trim(), tenant: $('ex-tenant').value.trim() };
      const result = await api('POST', '/explain', body);
      clear(out);
      if (result.status === 404 || result.status === 405) { out.append(el('p', { class: 'panel notice' }, 'Explain is not available on this gateway.')); return; }
      if (result.status !== 200) { out.append(el('p', { class: 'panel error' }, describe(result))); return; }
      const a = result.data;
      out.append(el('section', { class: 'panel' },
        el('p', { class: 'decision ' + a.decision, id: 'explain-decision' }, a.decision === 'allow' ? '\u2713 ALLOW' : '\u2715 DENY \u2014 ' + a.reason + ' (HTTP ' + a.status + ')'),
        a.why ? el('p', {}, a.why) : null,
        el('dl', { class: 'facts' }, el('dt', {}, 'Rule'), el('dd', { class: 'mono', id: 'explain-rule' }, a.rule || 'none (deny by default)'),
          a.tenant ? [el('dt', {}, 'Tenant'), el('dd', {}, a.tenant)] : null),
        a.details.length ? el('ul', {}, a.details.map((d) => el('li', {}, d))) : null,
        a.not_checked.length ? el('ul', { class: 'hint' }, a.not_checked.map((d) => el('li', {}, d))) : null));
    });
    main.append(form, out);
  }

  // ---------- Audit ----------

  async function auditPage(main) {
    main.append(el('h1', {}, 'Audit trail'));
    const field = (id, label, attrs) => el('div', {}, el('label', { for: id }, label), el('input', Object.assign({ id, autocomplete: 'off', size: 16 }, attrs)));
    const form = el('form', { class: 'panel', id: 'audit-form' },
      el('div', { class: 'form-row' }, field('au-client', 'Client', {}), field('au-actor', 'Admin', {}), field('au-action', 'Action', { placeholder: 'client.rotate' }),
        field('au-since', 'Since', { placeholder: '7d, or a UTC time' })),
      el('div', { class: 'toolbar' }, el('button', { type: 'submit', class: 'primary' }, 'Filter')));
    const out = el('div', { id: 'audit-result' });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const query = [['client', 'au-client'], ['actor', 'au-actor'], ['action', 'au-action'], ['since', 'au-since']]
        .filter(([, id]) => $(id).value.trim()).map(([name, id]) => name + '=' + enc($(id).value.trim())).join('&');
      await auditInto(out, query);
    });
    main.append(form, out);
    await auditInto(out, '');
  }

  async function auditInto(out, query) {
    clear(out);
    const result = await api('GET', '/audit' + (query ? '?' + query : ''));
    if (result.status === 404 || result.status === 405) { out.append(el('p', { class: 'panel notice', id: 'audit-unavailable' }, 'The audit trail is not available on this gateway.')); return; }
    if (result.status !== 200) { out.append(el('p', { class: 'panel error' }, describe(result))); return; }
    const events = (result.data.events || []).slice().reverse();
    if (!events.length) { out.append(el('p', { class: 'muted' }, 'No matching records.')); return; }
    const change = (changes) => Object.entries(changes || {}).map(([k, v]) => el('div', {}, el('strong', {}, k + ': '), fmt(v.before), ' \u2192 ', fmt(v.after)));
    const fmt = (v) => v === null || v === undefined ? '\u2014' : Array.isArray(v) ? '[' + v.join(', ') + ']' : String(v);
    out.append(el('table', { class: 'cards' },
      el('thead', {}, el('tr', {}, ['Time', 'Admin', 'From', 'Action', 'Client', 'Changes'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, events.map((e) => el('tr', {},
        el('td', { 'data-label': 'Time' }, when(e.ts)), el('td', { 'data-label': 'Admin' }, e.actor), el('td', { 'data-label': 'From' }, e.source || ''),
        el('td', { 'data-label': 'Action' }, e.action), el('td', { 'data-label': 'Client' }, e.client_id || e.token_id || ''),
        el('td', { 'data-label': 'Changes' }, change(e.changes)))))));
  }

  // ---------- Start ----------

  (async function start() {
    const result = await call('GET', '/ui/session');
    if (result.status === 200) { signedIn(result.data); await route(); }
    else showSignIn();
  })();
})();
"""#
}
