// The AI-OS web console: submit tasks over Socket.IO and watch their events live.
// Every piece of server data is rendered with textContent, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "aios.token";
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const MAX_SHOWN = 4000; // characters of a tool output or result shown inline
  const $ = (id) => document.getElementById(id);
  const state = { socket: null, taskId: null, lastSeq: 0, status: null };

  // --- small helpers -----------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clip(text) {
    return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}… (${text.length} chars)` : text;
  }

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  function setBadge(id, stateName, text) {
    $(id).dataset.state = stateName;
    $(id).textContent = text;
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${token()}` };
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((body.error && body.error.message) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // --- health --------------------------------------------------------------------------

  async function refreshHealth() {
    try {
      const response = await fetch("/health", { cache: "no-store" });
      const body = await response.json();
      const failing = Object.entries(body.checks || {}).filter(([, check]) => !check.ok);
      const detail = failing.map(([name, check]) => `${name}: ${check.error}`).join("; ");
      setBadge("health", response.ok ? "ok" : "bad", `health: ${body.status}`);
      $("health").title = detail || `all checks ok (${body.elapsed_ms} ms)`;
    } catch (error) {
      setBadge("health", "bad", "health: unreachable");
      $("health").title = String(error);
    }
  }

  // --- connection ----------------------------------------------------------------------

  function setConnected(connected, text) {
    setBadge("connection", connected ? "ok" : "off", text);
    for (const id of ["submit", "open"]) $(id).disabled = !connected;
    $("cancel").disabled = !connected || !state.taskId || FINAL.has(state.status);
  }

  function fillProviders(providers) {
    const select = $("provider");
    select.replaceChildren(el("option", "", "default"));
    select.firstChild.value = "";
    for (const provider of providers) {
      const option = el("option", "", provider.name);
      option.value = provider.name;
      select.append(option);
    }
  }

  async function connect() {
    disconnect();
    showError("");
    setConnected(false, "checking token…");
    try {
      fillProviders((await api("/api/providers")).providers || []);
    } catch (error) {
      const refused = error.status === 401;
      setConnected(false, refused ? "token refused" : "not connected");
      if (refused) {
        sessionStorage.removeItem(TOKEN_KEY); // a refused token is not kept
        $("connection").dataset.state = "bad";
      }
      showError(refused ? "The server refused this token (401 unauthorized). Check AIOS_API_TOKEN."
        : `Cannot reach the API: ${error.message}`);
      return;
    }
    const socket = io({ auth: { token: token() }, transports: ["websocket"] });
    state.socket = socket;
    socket.on("connect", () => {
      setConnected(true, "connected");
      showError("");
      if (state.taskId && !FINAL.has(state.status)) subscribe(state.taskId, state.lastSeq);
    });
    socket.on("disconnect", (reason) => setConnected(false, `disconnected (${reason})`));
    socket.on("connect_error", (error) => {
      setConnected(false, "not connected");
      showError(`Socket.IO connection failed: ${error.message}`);
    });
    socket.on("task:event", onEvent);
  }

  function disconnect() {
    if (state.socket) state.socket.disconnect();
    state.socket = null;
    setConnected(false, "not connected");
  }

  // --- the task form -------------------------------------------------------------------

  function showFields() {
    const kind = $("kind").value;
    const raw = $("raw-mode").checked;
    for (const fieldset of document.querySelectorAll("fieldset[data-kind]")) {
      fieldset.hidden = raw || !fieldset.dataset.kind.split(" ").includes(kind);
    }
    document.querySelector("fieldset[data-raw]").hidden = !raw;
  }

  function withModel(input) {
    if ($("provider").value) input.provider = $("provider").value;
    if ($("model").value.trim()) input.model = $("model").value.trim();
    return input;
  }

  function formInput(kind) {
    if (kind === "echo") return { text: $("echo-text").value };
    if (kind === "code") {
      const input = { language: $("code-language").value, code: $("code").value };
      if ($("code-stdin").value) input.stdin = $("code-stdin").value;
      return input;
    }
    if (kind === "chat") {
      return withModel({ messages: [{ role: "user", content: $("chat-prompt").value }] });
    }
    return withModel({ goal: $("agent-goal").value });
  }

  function taskInput(kind) {
    if (!$("raw-mode").checked) return formInput(kind);
    let input;
    try {
      input = JSON.parse($("raw-input").value);
    } catch (error) {
      throw new Error(`The raw input is not valid JSON: ${error.message}`);
    }
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      throw new Error("The raw input must be a JSON object.");
    }
    return input;
  }

  function toggleRaw() {
    if ($("raw-mode").checked) {
      $("raw-input").value = JSON.stringify(formInput($("kind").value), null, 2);
    }
    showFields();
  }

  // --- tasks ---------------------------------------------------------------------------

  function startWatching(taskId) {
    state.taskId = taskId;
    state.lastSeq = 0;
    state.status = null;
    $("task-id").textContent = taskId;
    setBadge("task-status", "none", "…");
    $("cancel").disabled = !state.socket || !state.socket.connected;
    $("output").replaceChildren();
    $("events").replaceChildren();
  }

  function submit(event) {
    event.preventDefault();
    showError("");
    const kind = $("kind").value;
    let input;
    try {
      input = taskInput(kind);
    } catch (error) {
      showError(error.message);
      return;
    }
    // A task id chosen here: the task's first events may arrive before the ack.
    const taskId = newTaskId();
    startWatching(taskId);
    state.socket.timeout(15000).emit("task:submit", { kind, input, task_id: taskId },
      (timeout, ack) => {
        if (timeout) return showError("The server did not answer the submit in time.");
        if (ack.error) {
          if (state.taskId === taskId) setBadge("task-status", "failed", "refused");
          return showError(`Submit refused: ${ack.error.message}`);
        }
        if (state.taskId === taskId && state.status === null) setStatus(ack.status);
      });
  }

  function newTaskId() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function subscribe(taskId, after) {
    state.socket.timeout(15000).emit("task:subscribe", { task_id: taskId, after },
      (timeout, ack) => {
        if (timeout) return showError("The server did not answer the subscribe in time.");
        if (ack.error) showError(`Cannot watch ${taskId}: ${ack.error.message}`);
      });
  }

  function open(event) {
    event.preventDefault();
    const taskId = $("open-id").value.trim();
    if (!taskId) return;
    showError("");
    startWatching(taskId);
    subscribe(taskId, 0);
  }

  function cancel() {
    if (!state.taskId) return;
    const taskId = state.taskId;
    state.socket.timeout(15000).emit("task:cancel", { task_id: taskId }, (timeout, ack) => {
      if (timeout) return showError("The server did not answer the cancel in time.");
      if (ack.error) return showError(`Cancel refused: ${ack.error.message}`);
      if (ack.status && state.taskId === taskId && FINAL.has(ack.status)) setStatus(ack.status);
    });
  }

  function setStatus(status) {
    state.status = status;
    setBadge("task-status", status, status);
    $("cancel").disabled = !state.socket || !state.socket.connected || FINAL.has(status);
  }

  // --- rendering events ----------------------------------------------------------------

  function onEvent(event) {
    if (event.task_id !== state.taskId || event.seq <= state.lastSeq) return;
    state.lastSeq = event.seq;
    render(event.type, event.data || {});
  }

  function appendOutput(text, className) {
    const output = $("output");
    const stick = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
    output.append(className ? el("span", className, text) : document.createTextNode(text));
    if (stick) output.scrollTop = output.scrollHeight;
  }

  function addEntry(type, text, className, details) {
    const item = el("li", className);
    item.append(el("span", "type", type), document.createTextNode(text));
    if (details !== undefined) {
      const box = el("details");
      box.append(el("summary", "", "details"), el("pre", "", clip(details)));
      item.append(box);
    }
    $("events").append(item);
  }

  function summarizeResult(data) {
    if (typeof data.exit_code === "number") {
      return `exit_code=${data.exit_code} end_reason=${data.end_reason} ` +
        `duration_ms=${data.duration_ms}`;
    }
    if (typeof data.text === "string") return clip(data.text);
    return "";
  }

  const RENDERERS = {
    stdout: (data) => appendOutput(String(data.text ?? "")),
    token: (data) => appendOutput(String(data.text ?? "")),
    stderr: (data) => appendOutput(String(data.text ?? ""), "stderr"),
    log: (data) => addEntry("log", String(data.text ?? "")),
    status: (data) => {
      setStatus(String(data.status));
      addEntry("status", String(data.status));
    },
    result: (data) => addEntry("result", summarizeResult(data), "", JSON.stringify(data, null, 2)),
    error: (data) => addEntry("error", `${data.code}: ${data.message}`, "error"),
    tool_call: (data) => addEntry("tool_call", `${data.name} (${data.id})`, "",
      JSON.stringify(data.arguments, null, 2)),
    tool_result: (data) => addEntry("tool_result", `${data.name} (${data.id})`,
      data.is_error ? "is-error" : "", String(data.output ?? "")),
  };

  function render(type, data) {
    const renderer = RENDERERS[type];
    if (renderer) renderer(data);
    else addEntry(type, "", "", JSON.stringify(data, null, 2));
  }

  // --- wiring --------------------------------------------------------------------------

  function saveToken(event) {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    connect();
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    disconnect();
  }

  function init() {
    $("token-form").addEventListener("submit", saveToken);
    $("forget").addEventListener("click", forgetToken);
    $("task-form").addEventListener("submit", submit);
    $("open-form").addEventListener("submit", open);
    $("cancel").addEventListener("click", cancel);
    $("kind").addEventListener("change", showFields);
    $("raw-mode").addEventListener("change", toggleRaw);
    showFields();
    refreshHealth();
    setInterval(refreshHealth, 10000);
    if (token()) {
      $("token").value = token();
      connect();
    }
  }

  init();
})();
