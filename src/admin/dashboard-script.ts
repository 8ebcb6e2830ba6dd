/**
 * Browser script of the live dashboard (inlined into the page; see dashboard-page.ts). Plain
 * ES2017 without template literals or backslashes, so it can live in this TypeScript string unchanged.
 *
 * It reads `api/v1/events` (EventSource): a `state` event replaces the whole view, registry
 * events (`load`, `health`, `member-*`) update it in place, `roles` events redraw the role
 * panels. Data is only ever written with textContent (member ids and labels are untrusted).
 *
 * Test hooks: every member card has `data-member-id`; fields inside have `data-field`
 * (health, address, site, group, weight, users, connections, cpu, sparkline); pools have
 * `data-pool`; role panels have `data-role`; the connection indicator is `data-field="connection"`.
 */
export const DASHBOARD_SCRIPT = `
(function () {
  'use strict';
  var HISTORY = 60;
  var HEALTH = ['up', 'suspect', 'down', 'draining'];
  var SVG = 'http://www.w3.org/2000/svg';

  // Later mechanisms add their panels here: role name -> function (summary, bodyElement).
  // Roles without an entry are shown as a generic key/value table.
  var panelRenderers = {};

  var view = { version: '', revision: 0, declared: [], roles: {} };
  var pools = new Map();   // name -> { el, list, summary, empty }
  var members = new Map(); // id -> { member, health, load, history, el, f }
  var resync = null;       // events held while GET api/v1/state is in flight
  var lastUpdate = 0;

  function q(sel) { return document.querySelector(sel); }
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === 'text') el.textContent = attrs[k]; else el.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { el.appendChild(c); });
    return el;
  }
  function num(n) { return typeof n === 'number' && isFinite(n) ? n.toLocaleString('en-US') : '–'; }
  function byName(a, b) { return a.localeCompare(b, 'en', { numeric: true }); }

  function hostPort(m) {
    var addr = m.addresses && m.addresses.length ? m.addresses[0] : '?';
    if (addr.indexOf(':') >= 0) addr = '[' + addr + ']';
    var names = Object.keys(m.ports || {});
    if (names.length === 0) return addr;
    var port = 'main' in m.ports ? m.ports.main : m.ports[names[0]];
    return addr + ':' + port;
  }

  // ---- pools -------------------------------------------------------------------------
  function pool(name) {
    var p = pools.get(name);
    if (p) return p;
    var summary = h('div', { class: 'summary', 'data-field': 'summary' });
    var list = h('div', { class: 'members' });
    var empty = h('p', { class: 'empty', text: 'No members registered.' });
    var el = h('section', { class: 'pool', 'data-pool': name }, [
      h('div', { class: 'pool-head' }, [h('h2', { text: name }), summary]),
      list,
      empty,
    ]);
    p = { name: name, el: el, list: list, summary: summary, empty: empty };
    pools.set(name, p);
    orderPools();
    return p;
  }
  function orderPools() {
    var declared = view.declared.filter(function (n) { return pools.has(n); });
    var others = Array.from(pools.keys()).filter(function (n) { return declared.indexOf(n) < 0; }).sort(byName);
    var root = q('#pools');
    declared.concat(others).forEach(function (n) { root.appendChild(pools.get(n).el); });
  }
  function refreshPool(name) {
    var p = pools.get(name);
    if (!p) return;
    var counts = { up: 0, suspect: 0, down: 0, draining: 0 }, users = 0, conns = 0, n = 0;
    members.forEach(function (m) {
      if (m.member.pool !== name) return;
      n++; counts[m.health] = (counts[m.health] || 0) + 1;
      if (m.load) { users += m.load.users || 0; conns += m.load.connections || 0; }
    });
    if (n === 0 && view.declared.indexOf(name) < 0) { p.el.remove(); pools.delete(name); return; }
    p.empty.hidden = n > 0;
    p.summary.replaceChildren();
    HEALTH.forEach(function (s) {
      p.summary.appendChild(h('span', {
        class: 'pill', 'data-health': s, 'data-field': 'count-' + s, 'data-zero': String(counts[s] === 0),
        text: counts[s] + ' ' + s,
      }));
    });
    p.summary.appendChild(h('span', { class: 'pill', 'data-field': 'pool-users', text: num(users) + ' users' }));
    p.summary.appendChild(h('span', { class: 'pill', 'data-field': 'pool-connections', text: num(conns) + ' connections' }));
  }
  function refreshTotals() {
    var total = 0, up = 0, users = 0, conns = 0;
    members.forEach(function (m) {
      total++; if (m.health === 'up') up++;
      if (m.load) { users += m.load.users || 0; conns += m.load.connections || 0; }
    });
    q('[data-field="total-members"]').textContent = num(total);
    q('[data-field="total-up"]').textContent = num(up);
    q('[data-field="total-users"]').textContent = num(users);
    q('[data-field="total-connections"]').textContent = num(conns);
  }

  // ---- member cards ------------------------------------------------------------------
  function card(id) {
    var f = {};
    function field(tag, name, cls) { f[name] = h(tag, { 'data-field': name, class: cls || '' }); return f[name]; }
    function stat(label, name) { return h('div', { class: 'stat' }, [h('span', { text: label }), field('b', name)]); }
    var cpuBar = h('i');
    var cpu = stat('cpu', 'cpu');
    cpu.appendChild(h('div', { class: 'bar' }, [cpuBar]));
    f.cpuBar = cpuBar;
    var spark = document.createElementNS(SVG, 'svg');
    spark.setAttribute('class', 'spark');
    spark.setAttribute('data-field', 'sparkline');
    spark.setAttribute('viewBox', '0 0 120 30');
    spark.setAttribute('preserveAspectRatio', 'none');
    var base = document.createElementNS(SVG, 'line');
    [['x1', '0'], ['y1', '29'], ['x2', '120'], ['y2', '29']].forEach(function (a) { base.setAttribute(a[0], a[1]); });
    f.area = document.createElementNS(SVG, 'polygon');
    f.line = document.createElementNS(SVG, 'polyline');
    spark.appendChild(base); spark.appendChild(f.area); spark.appendChild(f.line);
    var meta = h('div', { class: 'm-meta' }, [
      field('b', 'site'), document.createTextNode(' · group '), field('b', 'group'),
      document.createTextNode(' · weight '), field('b', 'weight'),
    ]);
    var el = h('article', { class: 'member', 'data-member-id': id }, [
      h('div', { class: 'm-head' }, [h('span', { class: 'm-id', 'data-field': 'id', text: id }), field('span', 'health', 'badge')]),
      field('div', 'address', 'm-addr'),
      meta,
      h('div', { class: 'stats' }, [stat('users', 'users'), stat('conns', 'connections'), cpu]),
      spark,
      field('div', 'timeline', 'timeline'),
      field('div', 'labels', 'labels'),
    ]);
    return { el: el, f: f };
  }
  function place(m) {
    var p = pool(m.member.pool);
    var after = null;
    Array.prototype.some.call(p.list.children, function (c) {
      if (byName(c.getAttribute('data-member-id'), m.member.id) > 0) { after = c; return true; }
      return false;
    });
    if (m.el.parentNode !== p.list || m.el.nextSibling !== after) p.list.insertBefore(m.el, after);
  }
  function render(m) {
    var f = m.f, mem = m.member, load = m.load;
    m.el.setAttribute('data-health', m.health);
    f.health.textContent = m.health;
    f.health.setAttribute('data-state', m.health);
    f.address.textContent = hostPort(mem);
    f.address.title = (mem.addresses || []).join(', ') + ' · ports ' + JSON.stringify(mem.ports || {});
    f.site.textContent = mem.site;
    f.group.textContent = String(mem.group);
    f.weight.textContent = String(mem.weight);
    f.users.textContent = load ? num(load.users) : '–';
    f.connections.textContent = load ? num(load.connections) : '–';
    var cpu = load ? Math.max(0, load.cpu || 0) : 0;
    f.cpu.textContent = load ? Math.round(cpu * 100) + '%' : '–';
    f.cpuBar.style.width = Math.min(100, cpu * 100) + '%';
    f.cpuBar.setAttribute('data-hot', String(cpu >= 0.85));
    m.el.title = load ? 'last report ' + new Date(load.timestamp).toLocaleTimeString() : 'no load report yet';
    f.labels.replaceChildren();
    Object.keys(mem.labels || {}).sort().forEach(function (k) {
      f.labels.appendChild(h('span', { class: 'label', text: k + '=' + mem.labels[k] }));
    });
    drawSpark(m);
    drawTimeline(m);
  }
  // Status over time: one cell per sample (load report or health change), oldest first.
  function drawTimeline(m) {
    var t = m.f.timeline;
    while (t.children.length > m.states.length) t.firstChild.remove();
    for (var i = 0; i < m.states.length; i++) {
      var cell = t.children[i] || t.appendChild(h('i'));
      cell.setAttribute('data-state', m.states[i]);
    }
    t.setAttribute('aria-label', 'status over time: ' + m.states.join(' '));
    t.title = 'status over the last ' + m.states.length + ' samples';
  }
  function sampleState(m) {
    m.states.push(m.health);
    if (m.states.length > HISTORY) m.states.shift();
  }
  function drawSpark(m) {
    var pts = m.history, max = 1;
    pts.forEach(function (v) { if (v > max) max = v; });
    // The points span the full width (a single point is drawn as a flat line).
    var values = pts.length === 1 ? [pts[0], pts[0]] : pts;
    var step = 120 / Math.max(1, values.length - 1);
    var coords = values.map(function (v, i) {
      return (i * step).toFixed(1) + ',' + (28 - (v / max) * 26).toFixed(1);
    });
    m.f.line.setAttribute('points', coords.join(' '));
    m.f.area.setAttribute('points', coords.length ? '0,30 ' + coords.join(' ') + ' 120,30' : '');
    m.f.line.parentNode.setAttribute('aria-label', 'users over time, latest ' + (pts.length ? pts[pts.length - 1] : 'none'));
  }
  function record(m, load) {
    if (!load || (m.load && m.load.timestamp === load.timestamp && m.load.users === load.users)) return;
    m.history.push(load.users || 0);
    if (m.history.length > HISTORY) m.history.shift();
  }
  function upsert(member, health, load) {
    var m = members.get(member.id);
    var oldPool = m ? m.member.pool : null;
    if (!m) {
      var c = card(member.id);
      m = { member: member, health: health || 'up', load: null, history: [], states: [], el: c.el, f: c.f };
      members.set(member.id, m);
      sampleState(m);
    }
    m.member = member;
    if (health && health !== m.health) { m.health = health; sampleState(m); }
    if (load !== undefined) {
      if (load && !(m.load && m.load.timestamp === load.timestamp)) sampleState(m);
      record(m, load);
      m.load = load;
    }
    place(m);
    render(m);
    if (oldPool && oldPool !== member.pool) refreshPool(oldPool);
    refreshPool(member.pool);
  }
  function removeMember(id) {
    var m = members.get(id);
    if (!m) return;
    members.delete(id);
    m.el.remove();
    refreshPool(m.member.pool);
  }

  // ---- role panels -------------------------------------------------------------------
  function flatten(value, prefix, out, depth) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < 3) {
      var keys = Object.keys(value);
      if (keys.length === 0) out.push([prefix || '(empty)', '{}']);
      keys.forEach(function (k) { flatten(value[k], prefix ? prefix + '.' + k : k, out, depth + 1); });
    } else {
      var text = typeof value === 'string' ? value : JSON.stringify(value);
      if (text === undefined) text = String(value);
      out.push([prefix || '(value)', text.length > 300 ? text.slice(0, 299) + '…' : text]);
    }
    return out;
  }
  function genericPanel(summary, body) {
    var rows = flatten(summary, '', [], 0).map(function (kv) {
      return h('tr', { 'data-key': kv[0] }, [h('th', { text: kv[0] }), h('td', { text: kv[1] })]);
    });
    body.replaceChildren(h('table', { class: 'kv' }, [h('tbody', null, rows)]));
  }
  // The probe assigner (seed 000): assignments per second over time, and per member the
  // assignments it made and the sessions (users) the member reports now.
  var assignerHistory = [];
  // The cluster's value space (seed 002) as one bar divided among members: roles.cluster is
  // { epoch, space: { lo, hi }, ranges: { id: [[lo, hi], ...] }, shares: { id: fraction } }.
  var CLUSTER_COLORS = ['#6e9eff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#56d4dd', '#ff7b72', '#e3b341'];
  panelRenderers.cluster = function (c, body) {
    if (!c || !c.space || !c.ranges) return genericPanel(c, body);
    var width = c.space.hi - c.space.lo + 1;
    var ids = Object.keys(c.ranges).sort(byName);
    var bar = document.createElementNS(SVG, 'svg');
    bar.setAttribute('class', 'valuebar');
    bar.setAttribute('data-field', 'value-space');
    bar.setAttribute('viewBox', '0 0 1000 24');
    bar.setAttribute('preserveAspectRatio', 'none');
    ids.forEach(function (id, k) {
      (c.ranges[id] || []).forEach(function (r) {
        var rect = document.createElementNS(SVG, 'rect');
        rect.setAttribute('x', String(((r[0] - c.space.lo) / width) * 1000));
        rect.setAttribute('width', String(Math.max(0.5, ((r[1] - r[0] + 1) / width) * 1000)));
        rect.setAttribute('y', '0');
        rect.setAttribute('height', '24');
        rect.setAttribute('fill', CLUSTER_COLORS[k % CLUSTER_COLORS.length]);
        rect.setAttribute('data-member', id);
        bar.appendChild(rect);
      });
    });
    var rows = ids.map(function (id, k) {
      var share = c.shares && typeof c.shares[id] === 'number' ? (c.shares[id] * 100).toFixed(1) + '%' : '–';
      var swatch = h('i', { class: 'swatch' });
      swatch.style.background = CLUSTER_COLORS[k % CLUSTER_COLORS.length];
      return h('tr', { 'data-member': id }, [
        h('th', null, [swatch, document.createTextNode(' ' + id)]),
        h('td', { 'data-field': 'share', text: share }),
        h('td', { 'data-field': 'ranges', text: String((c.ranges[id] || []).length) }),
      ]);
    });
    var table = h('table', { class: 'kv' }, [
      h('thead', null, [h('tr', null, [h('th', { text: 'member' }), h('th', { text: 'share' }), h('th', { text: 'intervals' })])]),
      h('tbody', null, rows),
    ]);
    var meta = h('div', { class: 'm-meta', text: 'epoch ' + c.epoch + ' · values ' + c.space.lo + '..' + c.space.hi +
      (c.self ? ' · this member: ' + c.self : '') });
    body.replaceChildren(meta, bar, table);
  };

  panelRenderers.assigner = function (a, body) {
    if (!a || typeof a.assignmentsPerSecond !== 'number' || !a.totals) return genericPanel(a, body);
    assignerHistory.push(a.assignmentsPerSecond);
    if (assignerHistory.length > 60) assignerHistory.shift();
    function stat(label, value, field) {
      return h('div', { class: 'stat' }, [h('span', { text: label }), h('b', { 'data-field': field, text: value })]);
    }
    var stats = h('div', { class: 'stats' }, [
      stat('assignments/s', a.assignmentsPerSecond.toFixed(1), 'assigner-rate'),
      stat('assignments', num(a.totals.assignments), 'assigner-assignments'),
      stat('dropped', num(a.totals.dropped), 'assigner-dropped'),
    ]);
    var spark = document.createElementNS(SVG, 'svg');
    spark.setAttribute('class', 'spark');
    spark.setAttribute('viewBox', '0 0 120 30');
    spark.setAttribute('preserveAspectRatio', 'none');
    var max = Math.max.apply(null, assignerHistory.concat([1]));
    var line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', assignerHistory.map(function (v, i) {
      return (assignerHistory.length === 1 ? 120 : (i * 120) / (assignerHistory.length - 1)).toFixed(1) + ',' + (29 - (v / max) * 27).toFixed(1);
    }).join(' '));
    spark.appendChild(line);
    var rows = Object.keys(a.members || {}).sort(byName).map(function (id) {
      var m = members.get(id);
      var sessions = m && m.load ? m.load.users : undefined;
      return h('tr', { 'data-member': id }, [
        h('th', { text: id }),
        h('td', { 'data-field': 'assigned', text: num(a.members[id]) }),
        h('td', { 'data-field': 'sessions', text: num(sessions) }),
      ]);
    });
    var table = h('table', { class: 'kv' }, [
      h('thead', null, [h('tr', null, [h('th', { text: 'member' }), h('th', { text: 'assigned' }), h('th', { text: 'sessions now' })])]),
      h('tbody', null, rows),
    ]);
    var meta = h('div', { class: 'm-meta', text: a.mode + ' mode on ' + a.address +
      (a.sites && a.sites.overflow && Object.keys(a.sites.overflow).length ? ' · overflow ' + JSON.stringify(a.sites.overflow) : '') });
    body.replaceChildren(meta, stats, spark, table);
  };

  function renderRoles(roles) {
    view.roles = roles || {};
    var root = q('#panels');
    var names = Object.keys(view.roles).sort(byName);
    Array.prototype.slice.call(root.children).forEach(function (el) {
      if (names.indexOf(el.getAttribute('data-role')) < 0) el.remove();
    });
    names.forEach(function (name) {
      var el = root.querySelector('[data-role="' + CSS.escape(name) + '"]');
      if (!el) {
        el = h('section', { class: 'panel', 'data-role': name }, [h('h2', { text: name }), h('div', { class: 'panel-body' })]);
      }
      root.appendChild(el);
      var body = el.querySelector('.panel-body');
      try { (panelRenderers[name] || genericPanel)(view.roles[name], body); }
      catch (e) { body.textContent = 'panel failed: ' + e; }
    });
  }

  // ---- state and events --------------------------------------------------------------
  function applyState(s) {
    view.version = s.version;
    view.revision = s.revision;
    view.declared = s.pools.map(function (p) { return p.name; });
    q('[data-field="version"]').textContent = s.version ? 'v' + s.version : '';
    var seen = new Set();
    s.pools.forEach(function (p) {
      pool(p.name);
      p.members.forEach(function (mm) {
        seen.add(mm.id);
        var member = { id: mm.id, pool: p.name, addresses: mm.addresses, ports: mm.ports, site: mm.site,
          group: mm.group, weight: mm.weight, labels: mm.labels };
        upsert(member, mm.health, mm.load);
      });
    });
    Array.from(members.keys()).forEach(function (id) { if (!seen.has(id)) removeMember(id); });
    Array.from(pools.keys()).forEach(refreshPool);
    orderPools();
    renderRoles(s.roles);
    touched();
  }
  function apply(ev) {
    if (ev.revision <= view.revision) return;
    view.revision = ev.revision;
    switch (ev.type) {
      case 'member-added': upsert(ev.member, null); startResync(); break; // health is not in the event
      case 'member-updated': upsert(ev.member, null); break;
      case 'member-removed': removeMember(ev.id); break;
      case 'load': { var m = members.get(ev.id); if (m) upsert(m.member, null, ev.load); break; }
      case 'health': { var n = members.get(ev.id); if (n) upsert(n.member, ev.health); break; }
      default: break; // assignments are not shown yet
    }
    touched();
  }
  function onEvent(ev) {
    if (resync) resync.push(ev); else apply(ev);
  }
  function startResync() {
    if (resync) return;
    resync = [];
    fetch('api/v1/state', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (s) { if (s.revision >= view.revision) applyState(s); })
      .catch(function () {})
      .then(function () {
        var held = resync || [];
        resync = null;
        held.forEach(apply);
      });
  }
  function touched() {
    lastUpdate = Date.now();
    q('[data-field="revision"]').textContent = String(view.revision);
    refreshTotals();
    tick();
  }
  function tick() {
    var el = q('[data-field="updated"]');
    if (!lastUpdate) { el.textContent = 'never'; return; }
    var ago = Math.max(0, Math.round((Date.now() - lastUpdate) / 1000));
    el.textContent = new Date(lastUpdate).toLocaleTimeString() + (ago >= 2 ? ' (' + ago + ' s ago)' : '');
    el.setAttribute('datetime', new Date(lastUpdate).toISOString());
  }
  function setConnection(state) {
    var el = q('[data-field="connection"]');
    el.setAttribute('data-state', state);
    el.textContent = state;
  }

  var source = null, retryMs = 1000;
  function connect() {
    setConnection(source ? 'reconnecting' : 'connecting');
    source = new EventSource('api/v1/events');
    var es = source;
    es.addEventListener('state', function (e) {
      retryMs = 1000;
      setConnection('live');
      applyState(JSON.parse(e.data));
    });
    ['member-added', 'member-updated', 'member-removed', 'load', 'health', 'assignment-set', 'assignment-deleted']
      .forEach(function (type) {
        es.addEventListener(type, function (e) { onEvent(JSON.parse(e.data)); });
      });
    es.addEventListener('roles', function (e) { renderRoles(JSON.parse(e.data)); touched(); });
    es.addEventListener('error', function () {
      setConnection('reconnecting');
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a 503 when too many dashboards are open): retry ourselves.
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      }
    });
  }

  setInterval(tick, 1000);
  connect();
})();
`;
