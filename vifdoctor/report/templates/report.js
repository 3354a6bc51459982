"use strict";
/* vifdoctor HTML report: renders the rows of the embedded JSON blob, one page at a time,
   and each instance's wiring diagrams on demand. No network, no library. */
(function () {
  const D = JSON.parse(document.getElementById("vd-data").textContent);
  const S = D.strings;
  const F = D.findings;      // [code, severity, port, host, device, nova_plug, needs, message]
  const I = D.instances;     // [device, name, host, state, codes, sg, next, steps, ports]
  const ST = D.steps;        // [host, action, instance, command, reason]
  const P = new Map();       // port string index -> [port, host, device, binding, needs, seen, basis, problems, codes]
  D.ports.forEach(function (r) { P.set(r[0], r); });
  const instOfDevice = new Map();
  const instOfPort = new Map();
  I.forEach(function (r, n) {
    instOfDevice.set(r[0], n);
    r[8].forEach(function (p) { instOfPort.set(p, n); });
  });
  const SEV = { failure: 0, warning: 1, info: 2 };

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function debounce(fn, ms) {
    let t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  /* A filtered, sorted, paged view over an array of rows of string indexes. */
  function PagedTable(opts) {
    const self = this;
    self.rows = opts.rows; self.size = opts.size || 100; self.page = 0;
    self.view = null; self.sortCol = -1; self.sortDir = 1; self.hay = null;
    self.ranks = {};
    const pager = document.getElementById(opts.pager);
    pager.addEventListener("click", function (ev) {
      const go = ev.target.getAttribute && ev.target.getAttribute("data-go");
      if (!go) return;
      const last = Math.max(0, Math.ceil(self.view.length / self.size) - 1);
      self.page = go === "first" ? 0 : go === "last" ? last :
        go === "prev" ? Math.max(0, self.page - 1) : Math.min(last, self.page + 1);
      self.draw();
    });
    const sizeSel = pager.querySelector("select.size");
    if (sizeSel) sizeSel.addEventListener("change", function () {
      self.size = parseInt(sizeSel.value, 10); self.page = 0; self.draw();
    });
    self.haystack = function (i) {
      if (!self.hay) self.hay = new Array(self.rows.length);
      let h = self.hay[i];
      if (h === undefined) h = self.hay[i] = opts.text(self.rows[i]).toLowerCase();
      return h;
    };
    self.rank = function (col) {  // string index -> its place in sorted order, per column
      if (self.ranks[col]) return self.ranks[col];
      const seen = new Set();
      self.rows.forEach(function (r) { seen.add(r[col]); });
      const ids = Array.from(seen);
      const key = opts.sortKey ? function (v) { return opts.sortKey(col, v); } : null;
      ids.sort(function (a, b) {
        if (key) { const d = key(a) - key(b); if (d) return d; }
        return S[a] < S[b] ? -1 : S[a] > S[b] ? 1 : 0;
      });
      const m = new Map();
      ids.forEach(function (v, n) { m.set(v, n); });
      return (self.ranks[col] = m);
    };
    self.refresh = function () {
      const text = opts.textInput ? opts.textInput.value.trim().toLowerCase() : "";
      const keep = opts.keep ? opts.keep() : null;
      const out = [];
      for (let i = 0; i < self.rows.length; i++) {
        if (keep && !keep(self.rows[i])) continue;
        if (text && self.haystack(i).indexOf(text) < 0) continue;
        out.push(i);
      }
      if (self.sortCol >= 0) {
        const m = self.rank(self.sortCol), c = self.sortCol, dir = self.sortDir;
        const rows = self.rows;
        out.sort(function (a, b) { return (m.get(rows[a][c]) - m.get(rows[b][c])) * dir || a - b; });
      }
      self.view = out; self.page = 0; self.draw();
    };
    self.draw = function () {
      const start = self.page * self.size;
      const slice = self.view.slice(start, start + self.size);
      opts.render(slice);
      const total = self.view.length;
      pager.querySelector(".where").textContent = total ?
        (start + 1) + "–" + (start + slice.length) + " of " + total : "none";
      if (opts.count) opts.count.textContent = total === self.rows.length ?
        total + " rows" : total + " of " + self.rows.length + " rows";
    };
    if (opts.head) opts.head.addEventListener("click", function (ev) {
      const th = ev.target.closest("th[data-col]");
      if (!th) return;
      const col = parseInt(th.getAttribute("data-col"), 10);
      self.sortDir = self.sortCol === col ? -self.sortDir : 1;
      self.sortCol = col;
      opts.head.querySelectorAll("th").forEach(function (h) { h.className = ""; });
      th.className = self.sortDir > 0 ? "asc" : "desc";
      self.refresh();
    });
    if (opts.textInput) opts.textInput.addEventListener("input", debounce(self.refresh, 150));
  }

  /* ---- findings ------------------------------------------------------------------- */
  const fSev = document.getElementById("f-severity");
  const fCode = document.getElementById("f-code");
  const fHost = document.getElementById("f-host");
  const hosts = Array.from(new Set(F.map(function (r) { return r[3]; })))
    .map(function (h) { return S[h]; }).filter(Boolean).sort();
  fHost.insertAdjacentHTML("beforeend", hosts.map(function (h) {
    return "<option>" + esc(h) + "</option>"; }).join(""));
  const fBody = document.querySelector("#findings-table tbody");
  const findings = new PagedTable({
    rows: F, pager: "f-pager", size: 100,
    textInput: document.getElementById("f-text"),
    count: document.getElementById("f-count"),
    head: document.querySelector("#findings-table thead"),
    sortKey: function (col, v) { return col === 1 ? (SEV[S[v]] || 0) : 0; },
    text: function (r) { return [S[r[0]], S[r[2]], S[r[3]], S[r[4]], S[r[7]]].join(" "); },
    keep: function () {
      const sev = fSev.value, code = fCode.value, host = fHost.value;
      if (!sev && !code && !host) return null;
      return function (r) {
        return (!sev || S[r[1]] === sev) && (!code || S[r[0]] === code) &&
          (!host || S[r[3]] === host);
      };
    },
    render: function (slice) {
      fBody.innerHTML = slice.map(function (i) {
        const r = F[i];
        return '<tr data-row="' + i + '"><td>' + esc(S[r[0]]) + '</td><td class="sev-' +
          esc(S[r[1]]) + '">' + esc(S[r[1]]) + '</td><td class="id">' + esc(S[r[2]]) +
          '</td><td>' + esc(S[r[3]]) + '</td><td class="id">' + esc(S[r[4]]) + "</td><td>" +
          esc(S[r[5]]) + "</td><td>" + esc(S[r[6]]) + "</td><td>" + esc(S[r[7]]) + "</td></tr>";
      }).join("");
    },
  });
  [fSev, fCode, fHost].forEach(function (s) { s.addEventListener("change", findings.refresh); });
  fBody.addEventListener("click", function (ev) {
    const tr = ev.target.closest("tr[data-row]");
    if (!tr) return;
    const r = F[parseInt(tr.getAttribute("data-row"), 10)];
    let n = instOfPort.get(r[2]);
    if (n === undefined) n = instOfDevice.get(r[4]);
    if (n !== undefined) { showInstance(n, r[2]); document.getElementById("instances").scrollIntoView(); }
  });

  /* ---- wiring diagrams ------------------------------------------------------------ */
  const SLOT_X = 150, SLOT_W = 118, NODE_W = 106, ROW_H = 42;
  function devName(prefix, port) { return (prefix + port).slice(0, 14); }
  /* The devices a plug kind puts between the VM and the integration bridge: [slot, name]. */
  function chain(kind, port) {
    const tap = devName("tap", port), br = "br-int";
    if (kind === "hybrid" || kind === "broken hybrid")
      return [[0, tap], [1, devName("qbr", port)], [2, devName("qvb", port)], [3, devName("qvo", port)], [4, br]];
    if (kind === "direct") return [[0, tap], [4, br]];
    if (kind === "vhostuser") return [[0, devName("vhu", port)], [4, br]];
    if (kind === "bridge") return [[0, tap], [1, "brq…"]];
    return [];
  }
  function wiringSvg(rec) {
    const port = S[rec[0]], binding = S[rec[3]], needs = S[rec[4]], seen = S[rec[5]];
    const basis = S[rec[6]], problems = S[rec[7]] ? S[rec[7]].split("\n") : [];
    const seenLabel = basis === "host scan" ? "host scan saw" :
      basis === "nova cache" ? "Nova's cache says" : "host scan saw";
    const rows = [
      { label: "binding says", kind: binding || "unknown" },
      { label: "host needs", kind: needs || "(not decided)", ref: true },
      { label: seenLabel, kind: basis ? seen || "unknown" : "(no host scan)" },
    ];
    const want = new Map(chain(needs, port).map(function (n) { return [n[1], n[0]]; }));
    const width = SLOT_X + 5 * SLOT_W + 80, height = rows.length * ROW_H + 22;
    const out = ['<svg class="wiring" data-port="' + esc(port) + '" width="' + width +
      '" height="' + height + '" viewBox="0 0 ' + width + " " + height + '" role="img">',
      "<title>wiring of port " + esc(port) + "</title>"];
    ["VM side", "Linux bridge", "veth", "veth (OVS)", "integration bridge"].forEach(function (t, i) {
      out.push('<text class="kind" x="' + (SLOT_X + i * SLOT_W + NODE_W / 2) +
        '" y="12" text-anchor="middle">' + t + "</text>");
    });
    rows.forEach(function (row, r) {
      const y = 22 + r * ROW_H, nodes = chain(row.kind, port);
      let differs = false;
      out.push('<g class="wrow" data-row="' + esc(row.label) + '" data-kind="' + esc(row.kind) + '">');
      out.push('<text class="rowlabel" x="4" y="' + (y + 16) + '">' + esc(row.label) + "</text>");
      out.push('<text class="kind" x="4" y="' + (y + 30) + '">' + esc(row.kind) + "</text>");
      for (let k = 1; k < nodes.length; k++) {
        out.push('<line x1="' + (SLOT_X + nodes[k - 1][0] * SLOT_W + NODE_W) + '" y1="' + (y + 12) +
          '" x2="' + (SLOT_X + nodes[k][0] * SLOT_W) + '" y2="' + (y + 12) + '"/>');
      }
      const names = new Set();
      nodes.forEach(function (n) {
        const slot = n[0], name = n[1];
        names.add(name);
        const bad = problems.some(function (p) { return p.indexOf(name) >= 0; }) && r === 2;
        const diff = (!row.ref && want.size && !want.has(name)) || bad;
        if (diff) differs = true;
        out.push('<rect class="dev' + (slot >= 3 ? " ovs" : "") + (diff ? " diff" : "") +
          '" x="' + (SLOT_X + slot * SLOT_W) + '" y="' + y + '" width="' + NODE_W +
          '" height="24" rx="4"><title>' + esc(name) + (diff ? " (differs from what the host needs)" : "") +
          "</title></rect>");
        out.push('<text x="' + (SLOT_X + slot * SLOT_W + NODE_W / 2) + '" y="' + (y + 16) +
          '" text-anchor="middle">' + esc(name) + "</text>");
      });
      if (!row.ref && want.size && (basis || r !== 2)) {
        want.forEach(function (slot, name) {
          if (names.has(name)) return;
          differs = true;
          out.push('<rect class="dev ghost" x="' + (SLOT_X + slot * SLOT_W) + '" y="' + y +
            '" width="' + NODE_W + '" height="24" rx="4"><title>' + esc(name) +
            " missing</title></rect>");
          out.push('<text class="ghost" x="' + (SLOT_X + slot * SLOT_W + NODE_W / 2) + '" y="' +
            (y + 16) + '" text-anchor="middle">no ' + esc(name.slice(0, 3)) + "</text>");
        });
      }
      if (!nodes.length && !want.size) {
        out.push('<text class="kind" x="' + SLOT_X + '" y="' + (y + 16) + '">nothing to draw</text>');
      }
      if (!row.ref && want.size && (basis || r !== 2)) {
        out.push('<text class="' + (differs ? "badge" : "same") + '" x="' + (SLOT_X + 5 * SLOT_W + 4) +
          '" y="' + (y + 16) + '">' + (differs ? "≠ needs" : "= needs") + "</text>");
      }
      out.push("</g>");
    });
    out.push("</svg>");
    return out.join("");
  }

  /* ---- instances ------------------------------------------------------------------ */
  const detail = document.getElementById("instance-detail");
  const iList = document.getElementById("instance-list");
  let current = -1;
  const instances = new PagedTable({
    rows: I, pager: "i-pager", size: 25,
    textInput: document.getElementById("i-text"),
    count: document.getElementById("i-count"),
    text: function (r) { return [S[r[0]], S[r[1]], S[r[2]], S[r[4]]].join(" "); },
    render: function (slice) {
      iList.innerHTML = slice.map(function (n) {
        const r = I[n];
        return '<li data-inst="' + n + '"' + (n === current ? ' class="on"' : "") + '><span class="codes">' +
          esc(S[r[4]]) + '</span><span class="mono">' + esc(S[r[0]]) + "</span><br>" +
          esc(S[r[1]] || "") + (S[r[2]] ? " · " + esc(S[r[2]]) : "") + "</li>";
      }).join("");
    },
  });
  iList.addEventListener("click", function (ev) {
    const li = ev.target.closest("li[data-inst]");
    if (li) showInstance(parseInt(li.getAttribute("data-inst"), 10));
  });

  function showInstance(n, focusPort) {
    current = n;
    const r = I[n];
    iList.querySelectorAll("li").forEach(function (li) {
      li.className = parseInt(li.getAttribute("data-inst"), 10) === n ? "on" : "";
    });
    const html = ['<h3 class="mono">' + esc(S[r[0]]) + "</h3><dl>"];
    const add = function (k, v) { if (v) html.push("<dt>" + esc(k) + "</dt><dd>" + esc(v) + "</dd>"); };
    add("name", S[r[1]]); add("host", S[r[2]]); add("state", S[r[3]]); add("codes", S[r[4]]);
    add("security groups", S[r[5]]);
    add("next stop/start or hard reboot", S[r[6]]);
    html.push("</dl>");
    if (r[7].length) {
      html.push('<h4>Remediation</h4><ol class="steps">');
      r[7].forEach(function (st) {
        html.push("<li><b>" + esc(S[st[0]]) + "</b>: " + esc(S[st[2]]) +
          (S[st[1]] ? "<code>" + esc(S[st[1]]) + "</code>" : "") + "</li>");
      });
      html.push("</ol>");
    } else if (D.nova) {
      html.push('<p class="note">No step needed.</p>');
    }
    html.push('<p class="legend">Wiring per port: devices from the VM (left) to the integration bridge (right). ' +
      'Red outline: differs from what the host needs; dashed: a device the host needs that is not there.</p>');
    r[8].forEach(function (p) {
      const rec = P.get(p) || [p, 0, 0, 0, 0, 0, 0, 0, 0];
      const probs = S[rec[7]] ? S[rec[7]].split("\n") : [];
      html.push('<div class="port' + (p === focusPort ? " focus" : "") + '" data-port="' + esc(S[p]) +
        '"><h4>port <span class="mono">' + esc(S[p]) + "</span> on " + esc(S[rec[1]] || "?") +
        (S[rec[8]] ? " · " + esc(S[rec[8]]) : "") + "</h4>");
      if (probs.length) html.push('<ul class="problems">' + probs.map(function (x) {
        return "<li>" + esc(x) + "</li>"; }).join("") + "</ul>");
      html.push(wiringSvg(rec) + "</div>");
    });
    detail.innerHTML = html.join("");
    if (focusPort !== undefined) {
      const el = detail.querySelector('.port[data-port="' + S[focusPort] + '"]');
      if (el) el.scrollIntoView();
    }
  }

  /* ---- remediation steps ------------------------------------------------------------ */
  if (document.getElementById("steps-table")) {
    const sBody = document.querySelector("#steps-table tbody");
    const steps = new PagedTable({
      rows: ST, pager: "s-pager", size: 100,
      textInput: document.getElementById("s-text"),
      count: document.getElementById("s-count"),
      text: function (r) { return [S[r[0]], S[r[1]], S[r[2]], S[r[4]]].join(" "); },
      render: function (slice) {
        sBody.innerHTML = slice.map(function (i) {
          const r = ST[i];
          return "<tr><td>" + esc(S[r[0]]) + "</td><td>" + esc(S[r[1]]) + '</td><td class="id">' +
            esc(S[r[2]]) + "</td><td><code>" + esc(S[r[3]]) + "</code></td><td>" + esc(S[r[4]]) + "</td></tr>";
        }).join("");
      },
    });
    steps.refresh();
  }

  /* ---- start ------------------------------------------------------------------------ */
  findings.refresh();
  instances.refresh();
  /* #port=UUID or #instance=UUID opens that instance (links can be shared) */
  function fromHash() {
    const m = /^#(port|instance)=(.+)$/.exec(location.hash);
    if (!m) return false;
    const idx = S.indexOf(decodeURIComponent(m[2]));
    const n = m[1] === "port" ? instOfPort.get(idx) : instOfDevice.get(idx);
    if (n === undefined) return false;
    showInstance(n, m[1] === "port" ? idx : undefined);
    return true;
  }
  window.addEventListener("hashchange", fromHash);
  if (!fromHash() && I.length) showInstance(0);
  document.body.setAttribute("data-ready-ms", performance.now().toFixed(0));
  document.body.setAttribute("data-ready", "1");
})();
