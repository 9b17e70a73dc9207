// ftvs manager page: reads the pair's state from the API's server-sent-event
// stream (fetch, so the bearer token goes in a header, never in a URL) and
// draws it; the controls POST to the API with the same token.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let token = "";
let current = null;

function setConn(text, cls) {
  const c = document.getElementById("conn");
  c.textContent = text;
  c.className = "conn " + cls;
}

function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("ftvs-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  token = sessionStorage.getItem("ftvs-token") || "";
}

function el(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function health(h) { return ["ok", "degraded", "failed", "unknown"].includes(h) ? h : "unknown"; }

function draw(s) {
  const svg = document.getElementById("drawing");
  svg.replaceChildren();
  const xs = { 1: 60, 2: 460 };
  const byNode = {};
  for (const c of s.coservers || []) byNode[c.node] = c;
  // The VS sits above the CoServer that runs it as primary.
  const vs = s.vs || {};
  const vsx = xs[vs.primary_node] !== undefined ? xs[vs.primary_node] + 40 : 260;
  const vsHealth = health(vs.health || (vs.running && vs.serving ? "ok" : vs.running ? "degraded" : "failed"));
  const g = el("g", { id: "vs", "data-health": vsHealth, "data-running": vs.running ? "1" : "0", "data-stopped": vs.stopped ? "1" : "0" });
  g.append(el("rect", { x: vsx, y: 10, width: 160, height: 54, rx: 8, class: vsHealth }));
  g.append(el("text", { x: vsx + 10, y: 30, class: "title" }, "VS " + (vs.running ? (vs.serving ? "serving" : "running, held") : vs.stopped ? "stopped (operator)" : "not running")));
  g.append(el("text", { x: vsx + 10, y: 50 }, "log " + (vs.log_position || 0) + "  lag " + (vs.lag || 0)));
  svg.append(g);
  // The runtime's figures beside the VS.
  const k = s.counters || {};
  const hold = k.output_hold || {};
  const reqs = Object.entries(k.service_requests || {}).filter(([, v]) => v > 0).map(([n, v]) => n + " " + v).join(", ");
  const figs = el("text", { id: "figures", x: 10, y: 84 },
    "frames in " + (k.frames_in || 0) + " out " + (k.frames_out || 0) +
    (hold.count ? ", output hold mean " + Math.round(hold.sum / hold.count * 1e6) + "µs" : "") +
    (reqs ? ", requests: " + reqs : "") + (k.resync_bytes ? ", resynced " + fmtBytes(k.resync_bytes) : ""));
  svg.append(figs);
  for (const n of [1, 2]) {
    const c = byNode[n] || { node: n, role: "unknown", health: "unknown" };
    const h = health(c.health);
    const x = xs[n];
    const cg = el("g", { id: "cs" + n, "data-health": h, "data-role": c.role || "" });
    cg.append(el("rect", { x: x, y: 100, width: 240, height: 150, rx: 10, class: h }));
    cg.append(el("text", { x: x + 12, y: 124, class: "title" }, "CoServer " + n + (n === s.local_node ? " (this one)" : "")));
    cg.append(el("text", { x: x + 12, y: 144 }, (c.role || "?") + (c.in_service === false ? ", out of service" : "") + " — " + h));
    if (c.version) cg.append(el("text", { x: x + 12, y: 162 }, "version " + c.version));
    // NICs of this node.
    let ny = 180;
    for (const nic of (s.nics || []).filter(i => i.node === n)) {
      const nh = health(nic.health || (nic.carrier ? "ok" : "failed"));
      cg.append(el("rect", { x: x + 12, y: ny - 11, width: 12, height: 12, class: nh, id: "nic" + n + "-" + nic.name, "data-health": nh }));
      cg.append(el("text", { x: x + 30, y: ny }, nic.role + " " + nic.name + (nic.active ? " (VS port)" : "") + (nic.carrier ? "" : " no carrier")));
      ny += 18;
    }
    svg.append(cg);
    // Disk copies below the node.
    let dx = x;
    for (const d of (s.disks || []).filter(d => d.node === n)) {
      const dh = health(d.health || (d.state === "UpToDate" ? "ok" : d.syncing ? "degraded" : "failed"));
      const dg = el("g", { id: "disk-" + d.disk + "-" + n, "data-health": dh, "data-state": d.state });
      dg.append(el("rect", { x: dx, y: 280, width: 115, height: 56, rx: 6, class: dh }));
      dg.append(el("text", { x: dx + 8, y: 298 }, "disk " + d.disk));
      dg.append(el("text", { x: dx + 8, y: 314 }, d.state + (d.attached === false ? ", detached" : "")));
      if (d.syncing) dg.append(el("text", { x: dx + 8, y: 330 }, Math.round((d.progress || 0) * 100) + "% " + fmtRate(d.rate_bps)));
      svg.append(dg);
      dx += 125;
    }
  }
  // CoServer links between the two boxes.
  let ly = 150;
  for (const l of s.links || []) {
    const lh = health(l.health || (l.up ? "ok" : "failed"));
    const lg = el("g", { id: "link-" + l.name, "data-health": lh });
    lg.append(el("line", { x1: 300, y1: ly, x2: 460, y2: ly, class: lh }));
    lg.append(el("text", { x: 320, y: ly - 6 }, l.name + (l.up ? " " + (l.rtt_us || 0) + "µs" : " down") + (l.active ? " *" : "")));
    svg.append(lg);
    ly += 40;
  }
  const w = s.witness || {};
  if (w.configured) {
    const wh = health(w.health || (w.reachable ? "ok" : "failed"));
    const wg = el("g", { id: "witness", "data-health": wh });
    wg.append(el("circle", { cx: 380, cy: 385, r: 14, class: wh }));
    wg.append(el("text", { x: 400, y: 390 }, "witness " + (w.address || "") + (w.checked === false ? " (not asked yet)" : w.reachable ? "" : " unreachable") + (w.lease_holder ? ", lease: node " + w.lease_holder : "")));
    svg.append(wg);
  }
}

function fmtBytes(b) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return b.toFixed(i ? 1 : 0) + " " + u[i];
}

function fmtRate(b) {
  if (!b) return "";
  const u = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return b.toFixed(1) + " " + u[i];
}

function events(s) {
  const ol = document.getElementById("events");
  ol.replaceChildren();
  const evs = (s.events || []).slice().reverse();
  for (const e of evs) {
    const li = document.createElement("li");
    li.className = "ev-" + e.kind;
    li.textContent = new Date(e.time).toISOString().replace("T", " ").replace("Z", "") + "  " + e.kind +
      (e.component ? " [" + e.component + "]" : "") + (e.detail ? "  " + e.detail : "");
    ol.append(li);
  }
}

function button(id, label, fn, confirmLabel) {
  const b = document.createElement("button");
  b.id = id;
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", () => {
    // Dangerous controls take two clicks: the first arms the button.
    if (confirmLabel && !b.classList.contains("armed")) {
      b.classList.add("armed");
      b.textContent = confirmLabel;
      setTimeout(() => { b.classList.remove("armed"); b.textContent = label; }, 5000);
      return;
    }
    b.classList.remove("armed");
    b.textContent = label;
    fn();
  });
  return b;
}

function fieldset(title, ...kids) {
  const f = document.createElement("fieldset");
  const l = document.createElement("legend");
  l.textContent = title;
  f.append(l, ...kids);
  return f;
}

function controls(s) {
  const box = document.getElementById("controls");
  if (box.dataset.shape === shape(s)) return; // keep armed buttons across updates
  box.dataset.shape = shape(s);
  box.replaceChildren();
  for (const n of [1, 2]) {
    const c = (s.coservers || []).find(c => c.node === n) || {};
    box.append(fieldset("CoServer " + n,
      c.in_service === false
        ? button("cs" + n + "-in", "Bring back into service", () => post("/api/v1/coservers/" + n + "/service", { in_service: true }))
        : button("cs" + n + "-out", "Take out of service", () => post("/api/v1/coservers/" + n + "/service", { in_service: false }), "Confirm: take " + n + " out"),
      button("cs" + n + "-port", "Move VS port here", () => post("/api/v1/vs/port", { node: n })),
      button("cs" + n + "-keep", "Split brain: keep this node's data", () => post("/api/v1/split-brain/resolve", { node: n }), "Confirm: discard the other node's changes")));
  }
  box.append(fieldset("Virtual server",
    button("vs-start", "Start", () => post("/api/v1/vs/start", {})),
    button("vs-stop", "Stop", () => post("/api/v1/vs/stop", {}), "Confirm: stop the VS")));
  const disks = [...new Set((s.disks || []).map(d => d.disk))];
  for (const d of disks) {
    box.append(fieldset("Disk " + d,
      button("disk-" + d + "-resync", "Resync", () => post("/api/v1/disks/" + encodeURIComponent(d) + "/resync", {})),
      button("disk-" + d + "-verify", "Online verify", () => post("/api/v1/disks/" + encodeURIComponent(d) + "/verify", {}))));
  }
}

function shape(s) {
  return JSON.stringify([(s.coservers || []).map(c => [c.node, c.in_service]), [...new Set((s.disks || []).map(d => d.disk))]]);
}

async function post(path, body) {
  const r = document.getElementById("result");
  r.textContent = "…";
  try {
    const resp = await fetch(path, { method: "POST", headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const j = await resp.json().catch(() => ({}));
    r.textContent = resp.ok ? "done: " + (j.done || path) : "refused (" + resp.status + "): " + (j.error || "");
    r.className = resp.ok ? "ok-text" : "err-text";
  } catch (e) {
    r.textContent = "failed: " + e;
  }
}

function render(s) {
  current = s;
  draw(s);
  events(s);
  controls(s);
  document.body.dataset.version = String(s.version);
}

async function watch() {
  for (;;) {
    if (!token) {
      setConn("no token", "down");
      document.getElementById("login").hidden = false;
      return;
    }
    try {
      const resp = await fetch("/api/v1/watch", { headers: { "Authorization": "Bearer " + token } });
      if (resp.status === 401) {
        setConn("token refused", "down");
        document.getElementById("login").hidden = false;
        return;
      }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      setConn("live", "live");
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let ev = "", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) ev = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
          }
          if (ev === "status" && data) render(JSON.parse(data));
        }
      }
    } catch (e) {
      setConn("disconnected: " + e.message, "down");
    }
    setConn("reconnecting…", "down");
    await new Promise(r => setTimeout(r, 1000));
  }
}

document.getElementById("login").addEventListener("submit", ev => {
  ev.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("ftvs-token", token);
  document.getElementById("login").hidden = true;
  watch();
});

// A token pasted into the address bar of an open page takes effect at once.
window.addEventListener("hashchange", () => {
  if (/token=/.test(location.hash)) {
    takeToken();
    location.reload();
  }
});

takeToken();
watch();
