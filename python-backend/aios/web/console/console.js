// The AI-OS web console: submit tasks over Socket.IO and watch their events live.
// Every piece of server data is rendered with textContent, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "aios.token";
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const MAX_SHOWN = 4000; // characters of a tool output or result shown inline
  // Artifacts shown inline; every other type (SVG and HTML too: they can carry scripts)
  // is only offered as a download.
  const INLINE_IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
  const $ = (id) => document.getElementById(id);
  const state = {
    socket: null, taskId: null, lastSeq: 0, status: null,
    attachments: [], // {name, path}: path is null while the upload runs
    objectUrls: [], // blob: URLs of the current task's artifacts, revoked with it
    approvals: new Map(), // call_id -> the Allow/Deny buttons of a request not yet resolved
  };

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

  function formatSize(size) {
    return typeof size === "number" ? `${size.toLocaleString("en-US")} bytes` : "? bytes";
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

  function withAttachments(input) {
    if (state.attachments.length) input.attachments = state.attachments.map((a) => a.path);
    return input;
  }

  function formInput(kind) {
    if (kind === "echo") return { text: $("echo-text").value };
    if (kind === "code") {
      const input = { language: $("code-language").value, code: $("code").value };
      if ($("code-stdin").value) input.stdin = $("code-stdin").value;
      return withAttachments(input);
    }
    if (kind === "chat") {
      return withAttachments(
        withModel({ messages: [{ role: "user", content: $("chat-prompt").value }] }));
    }
    return withAttachments(withModel({ goal: $("agent-goal").value }));
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

  // --- attachments ---------------------------------------------------------------------

  function attachChosen() {
    for (const file of $("attach").files) upload(file);
    $("attach").value = ""; // so that the same file can be chosen again
  }

  async function upload(file) {
    const entry = { name: file.name, path: null };
    const chip = el("li", "chip");
    chip.dataset.state = "uploading";
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.title = `Remove ${file.name}`;
    remove.setAttribute("aria-label", remove.title);
    remove.addEventListener("click", () => detach(entry, chip));
    chip.append(el("span", "", `${file.name} (${formatSize(file.size)})`), remove);
    $("attachments").append(chip);
    state.attachments.push(entry);
    const form = new FormData();
    form.append("file", file);
    try {
      entry.path = (await api("/api/files", { method: "POST", body: form })).path;
      chip.dataset.state = "ready";
    } catch (error) {
      detach(entry, chip);
      const status = error.status ? ` (${error.status})` : "";
      showError(`Uploading ${file.name} failed${status}: ${error.message}`);
    }
  }

  function detach(entry, chip) {
    state.attachments = state.attachments.filter((a) => a !== entry);
    chip.remove();
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
    $("artifacts").replaceChildren();
    $("events").replaceChildren();
    state.approvals.clear();
    for (const url of state.objectUrls.splice(0)) URL.revokeObjectURL(url);
  }

  function submit(event) {
    event.preventDefault();
    showError("");
    const kind = $("kind").value;
    if (state.attachments.some((a) => a.path === null)) {
      showError("Wait until the attached files are uploaded.");
      return;
    }
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

  // --- artifacts: fetched with the token (an <img src> cannot send it), shown as blob: URLs

  function objectUrl(bytes, type) {
    const url = URL.createObjectURL(new Blob([bytes], { type }));
    state.objectUrls.push(url);
    return url;
  }

  async function fetchArtifact(url) {
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || `${response.status}`);
    }
    return response.arrayBuffer();
  }

  function isOwnUrl(url) {
    try {
      return new URL(url, location.href).origin === location.origin;
    } catch (error) {
      return false;
    }
  }

  function showArtifact(data) {
    const name = String(data.name ?? "artifact");
    const mime = String(data.mime ?? "");
    const url = String(data.url ?? "");
    const caption = `${name} (${mime}, ${formatSize(data.size)})`;
    addEntry("artifact", caption);
    if (!isOwnUrl(url)) { // the token goes to this server only
      addEntry("error", `artifact ${name}: not a URL of this server`, "error");
      return;
    }
    const box = el("figure", "artifact");
    if (INLINE_IMAGES.has(mime)) {
      const image = el("img");
      image.alt = name;
      const note = el("figcaption", "", caption);
      box.append(image, note);
      fetchArtifact(url).then((bytes) => {
        if (box.isConnected) image.src = objectUrl(bytes, mime); // not after a task switch
      }).catch((error) => {
        image.remove();
        note.textContent = `${caption}: cannot load it (${error.message})`;
        note.className = "error";
      });
    } else {
      const button = el("button", "download", `Download ${caption}`);
      button.type = "button";
      button.addEventListener("click", () => download(url, name, button));
      box.append(button);
    }
    $("artifacts").append(box);
  }

  async function download(url, name, button) {
    button.disabled = true;
    try {
      const link = el("a");
      // octet-stream: saved as a file, never rendered (an HTML artifact stays inert)
      link.href = objectUrl(await fetchArtifact(url), "application/octet-stream");
      link.download = name;
      link.click();
    } catch (error) {
      showError(`Downloading ${name} failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // --- approvals: the agent waits for the user's Allow or Deny ---------------------------

  function showApproval(data) {
    const callId = String(data.call_id);
    const item = el("li", "approval");
    item.dataset.callId = callId;
    item.append(el("span", "type", "approval"), document.createTextNode(
      `${data.key || data.tool} wants to run: ${data.reason} ` +
      `(no answer within ${data.timeout_s} s: denied)`));
    const box = el("details");
    box.open = true;
    box.append(el("summary", "", "arguments"),
      el("pre", "", clip(JSON.stringify(data.arguments ?? {}, null, 2))));
    const buttons = el("span", "approval-buttons");
    const allow = el("button", "allow", "Allow");
    const deny = el("button", "deny", "Deny");
    for (const [button, approved] of [[allow, true], [deny, false]]) {
      button.type = "button";
      button.addEventListener("click", () => answerApproval(callId, approved, buttons));
      buttons.append(button);
    }
    item.append(box, buttons);
    $("events").append(item);
    state.approvals.set(callId, buttons);
  }

  function answerApproval(callId, approved, buttons) {
    const taskId = state.taskId;
    const controls = buttons.querySelectorAll("button");
    for (const button of controls) button.disabled = true;
    state.socket.timeout(15000).emit("task:approve",
      { task_id: taskId, call_id: callId, approved }, (timeout, ack) => {
        if (timeout) {
          for (const button of controls) button.disabled = false;
          return showError("The server did not answer in time; try again.");
        }
        if (ack.error) showError(`Answer refused: ${ack.error.message}`);
      });
  }

  function resolveApproval(data) {
    const callId = String(data.call_id);
    const verdict = data.approved ? "allowed" : "denied";
    const how = { user: "by the user", timeout: "no answer in time", cancel: "task cancelled",
      policy: "by the policy" }[data.by] || String(data.by);
    const buttons = state.approvals.get(callId);
    if (buttons) buttons.replaceChildren(el("span", `verdict ${verdict}`, `${verdict}`));
    state.approvals.delete(callId);
    addEntry("approval_resolved", `${callId}: ${verdict} (${how})` +
      (data.note ? ` — ${data.note}` : ""), data.approved ? "" : "is-error");
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
    artifact: showArtifact,
    approval_required: showApproval,
    approval_resolved: resolveApproval,
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
    $("attach").addEventListener("change", attachChosen);
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
