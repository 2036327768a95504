// The API reference: the operations of /api/openapi.json and the events of
// /api/socketio-schema.json, fetched with the console's token. No library: a plain listing,
// every piece of server data rendered with textContent.
"use strict";

(() => {
  const TOKEN_KEY = "aios.token";
  const $ = (id) => document.getElementById(id);
  const docs = {};

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function refName(schema) {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.split("/").pop();
    return JSON.stringify(schema);
  }

  async function fetchJson(path) {
    const token = sessionStorage.getItem(TOKEN_KEY) || "";
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` },
                                         cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(`${path}: ${response.status} ${(body.error && body.error.message) || ""}`);
    }
    return body;
  }

  function operation(method, path, op) {
    const block = el("details", undefined, "operation");
    const title = el("summary");
    title.append(el("code", `${method.toUpperCase()} ${path}`), ` ${op.summary || ""}`);
    block.append(title);
    const list = el("ul");
    for (const p of op.parameters || []) {
      list.append(el("li", `${p.in} ${p.name}${p.required ? "" : "?"}: ${JSON.stringify(p.schema)}`));
    }
    for (const [type, media] of Object.entries((op.requestBody || {}).content || {})) {
      list.append(el("li", `body (${type}): ${refName(media.schema)}`));
    }
    for (const [status, answer] of Object.entries(op.responses || {})) {
      const media = Object.entries(answer.content || {})
        .map(([type, m]) => `${type} ${refName(m.schema)}`).join(", ");
      const headers = Object.keys(answer.headers || {}).join(", ");
      list.append(el("li", `${status} ${answer.description}${media ? ": " + media : ""}` +
                           `${headers ? " (headers: " + headers + ")" : ""}`));
    }
    block.append(list);
    return block;
  }

  function schemaList(title, schemas) {
    const section = [el("h2", title)];
    for (const [name, schema] of Object.entries(schemas)) {
      const block = el("details");
      block.append(el("summary", name), el("pre", JSON.stringify(schema, null, 2)));
      section.push(block);
    }
    return section;
  }

  function download(name) {
    const blob = new Blob([JSON.stringify(docs[name], null, 2)], { type: "application/json" });
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  async function load() {
    try {
      docs["openapi.json"] = await fetchJson("/api/openapi.json");
      docs["socketio-schema.json"] = await fetchJson("/api/socketio-schema.json");
    } catch (error) {
      $("error").textContent = `${error.message} — connect with your token in the console first.`;
      $("error").hidden = false;
      return;
    }
    const openapi = docs["openapi.json"];
    $("operations").append(el("h2", `REST (OpenAPI ${openapi.openapi})`));
    for (const [path, item] of Object.entries(openapi.paths)) {
      for (const [method, op] of Object.entries(item)) $("operations").append(operation(method, path, op));
    }
    const socket = docs["socketio-schema.json"];
    $("socketio").append(el("h2", "Socket.IO events"));
    for (const direction of ["clientToServer", "serverToClient"]) {
      for (const [name, parts] of Object.entries(socket[direction])) {
        const text = Object.entries(parts).map(([part, s]) => `${part}: ${refName(s) || "any"}`);
        $("socketio").append(el("p", `${direction === "clientToServer" ? "→" : "←"} ${name} — ${text.join(", ")}`));
      }
    }
    $("schemas").append(...schemaList("REST schemas", openapi.components.schemas),
                        ...schemaList("Socket.IO schemas", socket.$defs));
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("download-openapi").addEventListener("click", () => download("openapi.json"));
    $("download-socketio").addEventListener("click", () => download("socketio-schema.json"));
    load();
  });
})();
