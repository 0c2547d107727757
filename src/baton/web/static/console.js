// Baton console: the few live parts of the pages. No inline script (the CSP forbids it).
"use strict";

// The incident list refreshes its rows without reloading the page.
function liveList() {
  const body = document.querySelector("[data-live]");
  if (!body) return;
  const refresh = async () => {
    try {
      const res = await fetch(body.dataset.live, { credentials: "same-origin" });
      if (res.ok) body.innerHTML = await res.text(); // server-rendered and escaped
    } catch (_) { /* offline for a moment: try again next time */ }
  };
  setInterval(refresh, 5000);
}

// A run's steps and their output, live over Server-Sent Events.
function liveLogs() {
  const steps = document.querySelector("[data-logs]");
  if (!steps) return;
  const source = new EventSource(steps.dataset.logs);
  const seen = new Set(); // the first change of a step carries its whole output so far
  const section = (data) => {
    let el = document.getElementById("step-" + data.seq);
    if (!el) {
      el = document.createElement("section");
      el.className = "step";
      el.id = "step-" + data.seq;
      const h = document.createElement("h3");
      const small = document.createElement("small");
      small.className = "step-status";
      h.append(`${data.seq}. ${data.phase} · ${data.name} `, small);
      const pre = document.createElement("pre");
      pre.className = "log";
      el.append(h, pre);
      steps.append(el);
    }
    return el;
  };
  source.addEventListener("step", (ev) => {
    const data = JSON.parse(ev.data);
    const el = section(data);
    el.querySelector(".step-status").textContent = data.status;
    const pre = el.querySelector("pre.log");
    const first = !seen.has(data.seq);
    seen.add(data.seq);
    if (data.output !== undefined) pre.textContent = data.output;
    else if (first) pre.textContent = data.append || "";
    else if (data.append) pre.textContent += data.append;
  });
  source.addEventListener("end", (ev) => {
    const data = JSON.parse(ev.data);
    document.getElementById("run-status").textContent = data.status;
    document.getElementById("run-summary").textContent = data.summary || "";
    source.close();
  });
}

document.addEventListener("DOMContentLoaded", () => { liveList(); liveLogs(); });
