// A state machine definition drawn as a graph: ASL -> nodes, clusters and typed edges -> dagre's
// layout (vendored, static/vendor/dagre) -> SVG built with createElementNS and textContent only.
"use strict";

const ConsoleGraph = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const START = "__start__", END = "__end__";
  const SHARED_HANDLER = 3; // catchers of one handler from which it is drawn as stubs

  function shortResource(state) {
    const r = state.Resource || "";
    if (!r) return state.Type;
    if (r.includes(":lambda:") || r.includes(":function:")) return "Lambda";
    const m = r.match(/arn:aws:states:::(.+)$/);
    return m ? m[1].replace(/^aws-sdk:/, "") : r.split(":").slice(-1)[0];
  }

  // ASL -> {nodes, clusters, edges}; state names are unique across a whole machine (AWS requires it)
  function fromDefinition(definition) {
    const nodes = [], clusters = [], edges = [];
    const addNode = (id, label, sub, kind, parent) => nodes.push({ id, label, sub, kind, parent });
    nodes.push({ id: START, label: "Start", sub: "", kind: "terminal", parent: null });
    nodes.push({ id: END, label: "End", sub: "", kind: "terminal", parent: null });
    edges.push({ from: START, to: definition.StartAt, kind: "next" });

    const shared = new Map();
    (function count(states) {
      for (const state of Object.values(states || {})) {
        for (const c of state.Catch || []) shared.set(c.Next, (shared.get(c.Next) || 0) + 1);
        for (const b of state.Branches || []) count(b.States);
        const inner = state.ItemProcessor || state.Iterator;
        if (inner) count(inner.States);
      }
    })(definition.States);

    function walk(states, parent, exitTo) {
      for (const [name, state] of Object.entries(states || {})) {
        const nested = state.Type === "Parallel" || state.Type === "Map";
        let outFrom = name;
        if (nested) {
          const cluster = "cluster:" + name;
          clusters.push({ id: cluster, label: `${name} (${state.Type}${state.Type === "Map" ? " iterator" : " branches"})`, parent });
          addNode(name, name, state.Type, "state", cluster);
          const join = "join:" + name;
          addNode(join, "joined", "", "join", cluster);
          const inner = state.Type === "Parallel" ? (state.Branches || [])
            : [state.ItemProcessor || state.Iterator].filter(Boolean);
          inner.forEach((branch, i) => {
            const box = `branch:${name}:${i}`;
            clusters.push({ id: box, label: state.Type === "Parallel" ? `branch ${i + 1}` : "each item", parent: cluster });
            edges.push({ from: name, to: branch.StartAt, kind: "next" });
            walk(branch.States, box, join);
          });
          outFrom = join;
        } else {
          addNode(name, name, state.Type === "Task" ? shortResource(state) : state.Type, "state", parent);
        }
        if (state.Next) edges.push({ from: outFrom, to: state.Next, kind: "next" });
        if (state.End || state.Type === "Succeed") edges.push({ from: outFrom, to: exitTo, kind: "next" });
        if (state.Type === "Fail" && exitTo === END) edges.push({ from: name, to: END, kind: "next" });
        if (state.Type === "Choice") {
          (state.Choices || []).forEach((rule, i) => edges.push({ from: name, to: rule.Next, kind: "choice",
            title: "rule " + (i + 1) + ": " + JSON.stringify(rule) }));
          if (state.Default) edges.push({ from: name, to: state.Default, kind: "default", label: "Default" });
        }
        for (const catcher of state.Catch || []) {
          edges.push({ from: name, to: catcher.Next, kind: "catch",
            title: "Catch " + (catcher.ErrorEquals || []).join(", ") + " → " + catcher.Next });
        }
      }
    }
    walk(definition.States, null, END);
    // A handler many states catch to (the failure path) gets a small stub beside each state that
    // goes to it, instead of edges across the whole graph: a dozen edges converging on one node
    // drag it and everything after it around and make the layout twice as wide. The handler and
    // what follows it are then laid out as a lane of their own.
    const parentOf = new Map(nodes.map((n) => [n.id, n.parent]));
    const routed = edges.map((e) => {
      if ((shared.get(e.to) || 0) < SHARED_HANDLER) return e;
      const stub = `to:${e.from}:${e.to}:${e.kind}`;
      nodes.push({ id: stub, label: "⤷ " + e.to, sub: "", kind: "stub", parent: parentOf.get(e.from), target: e.to, via: e.kind });
      return { ...e, to: stub };
    });
    return { nodes, clusters, edges: routed };
  }

  function textWidth(text, size) { return text.length * size * 0.6; }

  function layout(model) {
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
    g.setGraph({ rankdir: "TB", nodesep: 26, ranksep: 38, edgesep: 12, marginx: 16, marginy: 16 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const c of model.clusters) g.setNode(c.id, { label: c.label, clusterLabelPos: "top", paddingTop: 24 });
    for (const n of model.nodes) {
      const small = n.kind === "join" || n.kind === "stub";
      const w = n.kind === "join" ? 60 : n.kind === "stub" ? textWidth(n.label, 10) + 16
        : Math.max(110, Math.max(textWidth(n.label, 12), textWidth(n.sub, 10)) + 24);
      g.setNode(n.id, { width: w, height: small ? 20 : (n.sub ? 40 : 30) });
    }
    for (const c of model.clusters) if (c.parent) g.setParent(c.id, c.parent);
    for (const n of model.nodes) if (n.parent) g.setParent(n.id, n.parent);
    model.edges.forEach((e, i) => {
      if (!g.hasNode(e.from) || !g.hasNode(e.to)) return;
      // the main flow pulls harder than the catch edges, which would otherwise drag every state to the
      // failure handler
      g.setEdge(e.from, e.to, { weight: e.kind === "catch" ? 1 : 4, minlen: 1,
        ...(e.label ? { label: e.label, width: textWidth(e.label, 10) + 6, height: 12, labelpos: "c" } : {}) }, "e" + i);
    });
    dagre.layout(g);
    return g;
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value, cls) {
    const t = svg("text", { x, y, "text-anchor": "middle", "dominant-baseline": "middle", class: cls || "" }, parent);
    t.textContent = value;
    return t;
  }

  function pathOf(points) {
    if (points.length < 3) return "M" + points.map((p) => `${p.x},${p.y}`).join(" L");
    let d = `M${points[0].x},${points[0].y}`;
    for (let i = 1; i < points.length - 1; i++) {
      const mid = { x: (points[i].x + points[i + 1].x) / 2, y: (points[i].y + points[i + 1].y) / 2 };
      d += ` Q${points[i].x},${points[i].y} ${i === points.length - 2 ? points[i + 1].x : mid.x},${i === points.length - 2 ? points[i + 1].y : mid.y}`;
    }
    return d;
  }

  // Draws the definition into `container`; returns {setStatus(name -> status), select(name)}.
  function render(container, definition, onSelect) {
    const model = fromDefinition(definition);
    const g = layout(model);
    const size = g.graph();
    const root = svg("svg", { class: "graph", id: "graph", width: Math.ceil(size.width), height: Math.ceil(size.height),
      viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}` });
    const defs = svg("defs", {}, root);
    for (const [id, colour] of [["arrow", "#6b7787"], ["arrow-catch", "#d9822b"]]) {
      const marker = svg("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: colour }, marker);
    }
    const clusterLayer = svg("g", {}, root), edgeLayer = svg("g", {}, root), nodeLayer = svg("g", {}, root);
    for (const c of model.clusters) {
      const box = g.node(c.id);
      const group = svg("g", { class: "cluster", "data-cluster": c.id }, clusterLayer);
      svg("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: 8 }, group);
      const t = svg("text", { x: box.x - box.width / 2 + 10, y: box.y - box.height / 2 + 14 }, group);
      t.textContent = c.label;
    }
    g.edges().forEach((ref) => {
      const e = model.edges[Number(ref.name.slice(1))];
      const data = g.edge(ref);
      const group = svg("g", { class: "edge " + e.kind, "data-from": e.from, "data-to": e.to }, edgeLayer);
      svg("path", { d: pathOf(data.points), "marker-end": `url(#${e.kind === "catch" ? "arrow-catch" : "arrow"})` }, group);
      if (e.title) svg("title", {}, group).textContent = e.title;
      if (e.label && data.x !== undefined) text(group, data.x, data.y, e.label);
    });
    const byName = new Map();
    for (const n of model.nodes) {
      const box = g.node(n.id);
      const group = svg("g", { class: `node ${n.kind}${n.kind === "state" ? " st-notrun" : ""}`, "data-node": n.id,
        ...(n.kind === "state" ? { "data-state": n.id, "data-status": "notrun", tabindex: 0 } : {}) }, nodeLayer);
      svg("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: n.kind === "terminal" ? 15 : 5 }, group);
      if (n.kind === "join") { text(group, box.x, box.y + 1, "joined", "sub"); continue; }
      if (n.kind === "stub") {
        text(group, box.x, box.y + 1, n.label, "sub");
        svg("title", {}, group).textContent = "caught errors go to " + n.target + " (click to select it)";
        group.addEventListener("click", () => onSelect && onSelect(n.target));
        continue;
      }
      text(group, box.x, box.y - (n.sub ? 7 : 0), n.label);
      if (n.sub) text(group, box.x, box.y + 10, n.sub, "sub");
      svg("title", {}, group).textContent = n.label + (n.sub ? " — " + n.sub : "");
      if (n.kind === "state") {
        byName.set(n.id, group);
        const pick = () => onSelect && onSelect(n.id);
        group.addEventListener("click", pick);
        group.addEventListener("keydown", (ev) => { if (ev.key === "Enter") pick(); });
      }
    }
    container.replaceChildren(root);
    // centre a node in the scrolled container (not scrollIntoView: that would scroll the page too)
    let zoom = 1;
    const reveal = (id) => {
      const box = g.node(id);
      if (!box) return;
      container.scrollLeft = Math.max(0, box.x * zoom - container.clientWidth / 2);
      container.scrollTop = Math.max(0, box.y * zoom - container.clientHeight / 3);
    };
    reveal(START);
    return {
      reveal,
      // scales the drawing (its viewBox stays): 1 is full size, "fit" the container's width
      zoom(value) {
        zoom = value === "fit" ? Math.min(1, (container.clientWidth - 4) / size.width) : Math.max(0.15, Math.min(2, value));
        root.setAttribute("width", Math.ceil(size.width * zoom));
        root.setAttribute("height", Math.ceil(size.height * zoom));
        return zoom;
      },
      get scale() { return zoom; },
      states: [...byName.keys()],
      setStatus(statuses) {
        for (const [name, group] of byName) {
          const status = statuses.get(name) || "notrun";
          if (group.getAttribute("data-status") === status) continue;
          group.classList.remove("st-" + group.getAttribute("data-status"));
          group.classList.add("st-" + status);
          group.setAttribute("data-status", status);
        }
      },
      select(name) {
        for (const [n, group] of byName) group.classList.toggle("selected", n === name);
        reveal(name);
      },
    };
  }

  return { fromDefinition, render };
})();
