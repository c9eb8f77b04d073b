"use strict";
// The Dueflow board: open tasks grouped by due, kept live over the realtime WebSocket.
(() => {
  const tasks = new Map();
  const board = {
    position: 0, today: "", zone: "UTC", skew: 0, socket: null, retries: 0, stopped: false,
  };
  window.dueflowBoard = board; // for people and tests: board.drop() closes the socket once
  const $ = (id) => document.getElementById(id);
  const WORDS = {
    TASK_CREATED: "added", TASK_UPDATED: "changed", TASK_COMPLETED: "completed",
    TASK_REOPENED: "reopened", TASK_DELETED: "deleted", TASK_RESTORED: "restored",
    TASK_RECURRED: "recurred", REMINDER_TRIGGERED: "reminder fired",
  };

  function setState(state, text) {
    const element = $("connection");
    element.dataset.state = state;
    element.textContent = text;
  }

  // the server's clock, as this page reckons it (the offset is set by each load and time message)
  const now = () => Date.now() + board.skew;
  const CHECK_EVERY = 60000; // ms: the page's own look at the clock, should a time message miss it

  function passed(task) {
    if (!task.due) return false;
    if (task.due.length === 10) return task.due < board.today; // all day: once the day has ended
    return Date.parse(task.due) < now();
  }

  function group(task) {
    if (task.overdue || passed(task)) return "overdue";
    if (!task.due) return "nodate";
    return task.due.slice(0, 10) <= board.today ? "today" : "upcoming";
  }

  function dateIn(zone, moment) {
    try {
      return new Intl.DateTimeFormat("en-CA", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      }).format(new Date(moment));
    } catch (error) { return ""; }
  }

  // a fallback only: the server says when time regroups the tasks (a "time" message); this
  // catches what the page missed while its socket was away, or a message lost on the way
  function regroupByClock() {
    const today = dateIn(board.zone, now());
    if (today > board.today) board.today = today;
    render();
  }
  setInterval(() => { if (!board.stopped && tasks.size) regroupByClock(); }, CHECK_EVERY);

  function timePassed(message) {
    board.skew = Date.parse(message.at) - Date.now();
    const newDay = message.today !== board.today;
    board.today = message.today;
    const titles = [];
    for (const id of message.task_ids) {
      const task = tasks.get(id);
      if (task) { task.overdue = true; titles.push(`“${task.title}”`); }
    }
    if (message.reason === "day" || newDay) note(`A new day: today is ${message.today}`);
    if (titles.length) {
      const more = titles.length > 3 || message.more ? " and more" : "";
      note(`Overdue now: ${titles.slice(0, 3).join(", ")}${more}`);
    }
    render();
  }

  function item(task) {
    const li = document.createElement("li");
    li.className = "task";
    li.tabIndex = 0;
    li.dataset.taskId = task.id;
    li.dataset.version = String(task.version);
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = task.title;
    const meta = document.createElement("div");
    meta.className = "meta";
    const priority = document.createElement("span");
    priority.className = "priority";
    priority.dataset.priority = task.priority;
    priority.textContent = task.priority === "none" ? "no priority" : task.priority;
    meta.append(priority);
    if (task.due) {
      const due = document.createElement("time");
      due.dateTime = task.due;
      due.textContent = "due " + task.due.replace("T", " ").slice(0, 16);
      meta.append(due);
    }
    for (const tag of task.tags) {
      const span = document.createElement("span");
      span.className = "tag";
      span.textContent = "#" + tag;
      meta.append(span);
    }
    if (task.recurrence) {
      const span = document.createElement("span");
      span.textContent = "repeats";
      meta.append(span);
    }
    li.append(title, meta);
    const due = task.due ? ", due " + task.due : "";
    li.setAttribute("aria-label", `${task.title}, priority ${task.priority}${due}` +
      (task.tags.length ? ", tags " + task.tags.join(" ") : ""));
    return li;
  }

  function render(flashId) {
    const groups = { overdue: [], today: [], upcoming: [], nodate: [] };
    for (const task of tasks.values()) groups[group(task)].push(task);
    const byDue = (a, b) => (a.due || "").localeCompare(b.due || "") || b.urgency - a.urgency;
    for (const [name, list] of Object.entries(groups)) {
      list.sort(byDue);
      const ul = $(name);
      ul.replaceChildren(...list.map(item));
      document.querySelector(`[data-count="${name}"]`).textContent = `(${list.length})`;
    }
    $("summary").textContent = `${tasks.size} open task(s); today is ${board.today}`;
    if (flashId) {
      const li = document.querySelector(`li[data-task-id="${CSS.escape(flashId)}"]`);
      if (li) li.classList.add("flash");
    }
  }

  function note(text) {
    const li = document.createElement("li");
    li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
    $("activity").prepend(li);
    while ($("activity").children.length > 20) $("activity").lastChild.remove();
  }

  function apply(message) {
    board.position = message.position;
    const task = message.task;
    const known = tasks.get(task.id);
    const reminder = message.event === "REMINDER_TRIGGERED";
    if (!reminder && known && known.version >= task.version) return;
    if (!reminder || known) {
      if (task.status === "open") tasks.set(task.id, task); else tasks.delete(task.id);
    }
    note(`“${task.title}” ${WORDS[message.event] || message.event.toLowerCase()}`);
    render(task.id);
  }

  function showSignIn() {
    board.stopped = true;
    $("board").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    setState("offline", "Signed out");
    $("token").focus();
  }

  async function load() {
    const response = await fetch("/board/tasks", { credentials: "same-origin" });
    if (response.status === 401) { showSignIn(); return false; }
    if (!response.ok) throw new Error(`tasks: HTTP ${response.status}`);
    const data = await response.json();
    tasks.clear();
    for (const task of data.tasks) tasks.set(task.id, task);
    board.position = data.position;
    board.today = data.today;
    board.zone = data.timezone;
    board.skew = Date.parse(data.now) - Date.now();
    board.user = data.user;
    $("signin").hidden = true;
    $("board").hidden = false;
    $("signout").hidden = false;
    render();
    return true;
  }

  async function connect() {
    if (board.stopped) return;
    setState("connecting", "Connecting…");
    let ticket;
    try {
      const response = await fetch("/realtime/tickets", { method: "POST", credentials: "same-origin" });
      if (response.status === 401) { showSignIn(); return; }
      if (!response.ok) throw new Error(`ticket: HTTP ${response.status}`);
      ticket = (await response.json()).ticket;
    } catch (error) { retry(); return; }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // the ticket goes in Sec-WebSocket-Protocol, never in the URL (request lines reach logs)
    const url = `${scheme}//${location.host}/realtime/ws?after=${board.position}`;
    const socket = new WebSocket(url, ["dueflow.v1", `dueflow.ticket.${ticket}`]);
    board.socket = socket;
    socket.onmessage = async (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "hello") {
        board.retries = 0;
        setState("live", `Live as ${message.user}`);
        regroupByClock(); // time messages are not replayed: catch up on any missed while away
      } else if (message.type === "change") {
        apply(message);
      } else if (message.type === "time") {
        timePassed(message);
      } else if (message.type === "resync") {
        note("catching up: reloading the tasks");
        await load();
      }
    };
    socket.onclose = (event) => {
      if (board.socket !== socket) return;
      board.socket = null;
      if (event.code === 4403) { showSignIn(); return; }
      retry();
    };
  }

  function retry() {
    if (board.stopped) return;
    board.retries += 1;
    const delay = Math.min(10000, 250 * 2 ** Math.min(board.retries, 6));
    setState("connecting", `Reconnecting in ${Math.round(delay / 1000)} s…`);
    setTimeout(connect, delay);
  }

  board.drop = () => { if (board.socket) board.socket.close(4000, "dropped by the page"); };

  async function signIn(event) {
    event.preventDefault();
    $("signin-error").textContent = "";
    const response = await fetch("/board/session", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: $("token").value }),
    });
    $("token").value = "";
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      $("signin-error").textContent = body.error_description || `Sign-in failed (HTTP ${response.status})`;
      return;
    }
    board.stopped = false;
    if (await load()) connect();
  }

  async function signOut() {
    board.stopped = true;
    if (board.socket) { const socket = board.socket; board.socket = null; socket.close(1000); }
    await fetch("/board/signout", { method: "POST", credentials: "same-origin" });
    tasks.clear();
    showSignIn();
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    try { if (await load()) connect(); } catch (error) { setState("offline", "Offline"); retry(); }
  });
})();
