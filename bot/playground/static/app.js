// The playground page: renders what the chosen member sees (a live feed from /api/events) and sends
// what they do (commands, buttons, reactions, forms) to the playground's server. No framework.
"use strict";

const $ = (id) => document.getElementById(id);
const ATTACHMENT = 11, BOOLEAN = 5, INTEGER = 4, NUMBER = 10, USER = 6, CHANNEL = 7, ROLE = 8, MENTIONABLE = 9;
const CANCEL_EMOJI = "❌";

let state = null;          // the last view received
let member = null;         // id of the member the page acts as
let feed = null;           // the EventSource
let command = null;        // the chosen command definition
let openModal = null;      // {interaction} of the form on screen
const rendered = new Map(); // message id -> {json, element}
const dismissed = new Set();
let stickToBottom = true;   // follow new messages unless the member scrolled up

// ------------------------------------------------------------------------------------------ helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(child));
  }
  return node;
}

// Each name its own colour (FNV-1a hash of the name), the bot Discord's blurple.
function hue(name) {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h % 360;
}

function avatar(id, name) {
  const colour = state && id === state.bot.id ? "#5865f2" : `hsl(${hue(name || "?")} 50% 42%)`;
  return el("div", { class: "avatar", style: `background: ${colour}` }, (name || "?")[0].toUpperCase());
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function formatTime(seconds, style) {
  const date = new Date(seconds * 1000);
  if (style === "R") {
    const diff = Math.round((date - Date.now()) / 1000);
    const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    const [unit, size] = units.find(([, s]) => Math.abs(diff) >= s) || units[3];
    return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(Math.round(diff / size), unit);
  }
  if (style === "t") return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (style === "d") return date.toLocaleDateString();
  return date.toLocaleString();
}

// Links to Discord messages point at the message on this page instead.
function localHref(url) {
  const match = /^https:\/\/discord\.com\/channels\/[^/]+\/\d+\/(\d+)$/.exec(url);
  return match ? `#m-${match[1]}` : url;
}

// The little Markdown Discord messages use: mentions, timestamps, code, bold, italics, links.
function markdown(text) {
  if (!text) return "";
  const users = new Map(state.users.map((u) => [u.id, u.name]));
  users.set(state.bot.id, state.bot.name);
  const roles = new Map(state.roles.map((r) => [r.id, r.name]));
  const channels = new Map(state.channels.map((c) => [c.id, c.name]));
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/&lt;@!?(\d+)&gt;/g, (_, id) => `<span class="mention">@${escapeHtml(users.get(id) || "unknown")}</span>`)
    .replace(/&lt;@&amp;(\d+)&gt;/g, (_, id) => `<span class="mention">@${escapeHtml(roles.get(id) || "role")}</span>`)
    .replace(/&lt;#(\d+)&gt;/g, (_, id) => `<span class="mention">#${escapeHtml(channels.get(id) || "channel")}</span>`)
    .replace(/&lt;t:(-?\d+)(?::([tTdDfFR]))?&gt;/g, (_, s, style) => `<time>${escapeHtml(formatTime(+s, style))}</time>`)
    .replace(/\*\*(.+?)\*\*/g, "<b>$1</b>")
    .replace(/__(.+?)__/g, "<u>$1</u>")
    .replace(/(^|[^*])\*([^*\n]+)\*/g, "$1<i>$2</i>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, (_, label, url) => `<a href="${localHref(url)}">${label}</a>`)
    .replace(/^-# (.*)$/gm, '<small>$1</small>');
}

function rich(tag, cls, text) {
  const node = el(tag, { class: cls });
  node.innerHTML = markdown(text);
  return node;
}

async function post(path, payload, files = []) {
  let body = JSON.stringify(payload);
  const headers = { "X-Playground": "1" };
  if (files.length) {
    body = new FormData();
    body.append("payload", JSON.stringify(payload));
    for (const [name, file] of files) body.append(name, file, file.name);
  } else {
    headers["Content-Type"] = "application/json";
  }
  try {
    const response = await fetch(path, { method: "POST", headers, body });
    const answer = await response.json();
    if (answer.error) notice(answer.error);
    if (answer.modal) showModal(answer.modal, answer.interaction);
    return answer;
  } catch (error) {
    notice(`The playground did not answer (${error.message}). Is it still running?`);
    return { error: String(error) };
  }
}

function notice(text) {
  const box = $("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

// ------------------------------------------------------------------------------------------ messages

function attachmentUrl(message, url) {
  if (url && url.startsWith("attachment://")) {
    const found = message.attachments.find((a) => a.filename === url.slice("attachment://".length));
    return found ? found.url : null;
  }
  return url;
}

function renderEmbed(message, embed) {
  const color = embed.color != null ? `#${embed.color.toString(16).padStart(6, "0")}` : null;
  const box = el("div", { class: "embed", style: color ? `border-left-color: ${color}` : null });
  if (embed.author && embed.author.name) box.append(el("div", { class: "e-author" }, embed.author.name));
  if (embed.title) {
    const title = rich("div", "e-title", embed.title);
    box.append(embed.url ? el("a", { href: localHref(embed.url) }, title) : title);
  }
  if (embed.description) box.append(rich("div", "e-desc", embed.description));
  if (embed.fields && embed.fields.length) {
    box.append(el("div", { class: "e-fields" }, embed.fields.map((f) =>
      el("div", { class: f.inline ? "e-field inline" : "e-field" },
        rich("div", "name", f.name), rich("div", "value", f.value)))));
  }
  const image = embed.image && attachmentUrl(message, embed.image.url);
  if (image) box.append(el("div", { class: "e-image" }, el("a", { href: image, target: "_blank" }, el("img", { src: image, alt: "", onload: followBottom }))));
  const thumb = embed.thumbnail && attachmentUrl(message, embed.thumbnail.url);
  if (thumb) box.append(el("div", { class: "e-thumb" }, el("img", { src: thumb, alt: "" })));
  const footer = [embed.footer && embed.footer.text, embed.timestamp && formatTime(Date.parse(embed.timestamp) / 1000)];
  if (footer.some(Boolean)) box.append(el("div", { class: "e-footer" }, footer.filter(Boolean).join(" • ")));
  return box;
}

function renderComponent(message, c) {
  if (c.type === 1) return el("div", { class: "row" }, (c.components || []).map((child) => renderComponent(message, child)));
  if (c.type === 2) {
    const label = [c.emoji && c.emoji.name, c.label].filter(Boolean).join(" ");
    if (c.style === 5) return el("a", { class: "component style-5", href: localHref(c.url) }, label);
    return el("button", {
      class: `component style-${c.style || 2}`, type: "button", disabled: !!c.disabled, dataset: { customId: c.custom_id },
      onclick: () => post("/api/button", { member, message: message.id, custom_id: c.custom_id, locale: locale() }),
    }, label);
  }
  if (c.type === 3) {
    const select = el("select", {
      class: "component", dataset: { customId: c.custom_id },
      onchange: () => post("/api/select", { member, message: message.id, custom_id: c.custom_id, values: [select.value] }),
    }, el("option", { value: "" }, c.placeholder || "Make a selection"),
    (c.options || []).map((o) => el("option", { value: o.value }, o.label)));
    return select;
  }
  return null;
}

function renderMessage(m) {
  const body = el("div", { class: "body" },
    el("div", { class: "head" },
      el("span", { class: "author" }, m.author.name),
      m.author.bot ? el("span", { class: "tag" }, "APP") : null,
      el("time", { datetime: m.timestamp }, formatTime(Date.parse(m.timestamp) / 1000, "t")),
      m.edited ? el("span", { class: "edited" }, "(edited)") : null));
  if (m.loading) body.append(el("div", { class: "thinking" }, `${m.author.name} is thinking…`));
  if (m.content) body.append(rich("div", "content", m.content));
  for (const embed of m.embeds) body.append(renderEmbed(m, embed));
  const inEmbeds = new Set(m.embeds.flatMap((e) => [e.image, e.thumbnail]).filter(Boolean).map((i) => i.url));
  const files = m.attachments.filter((a) => !inEmbeds.has(`attachment://${a.filename}`));
  if (files.length) {
    body.append(el("div", { class: "attachments" }, files.map((a) => (a.content_type || "").startsWith("image/")
      ? el("a", { href: a.url, target: "_blank" }, el("img", { src: a.url, alt: a.filename, onload: followBottom }))
      : el("a", { class: "file", href: a.url, target: "_blank" }, a.filename))));
  }
  if (m.components.length) body.append(el("div", { class: "components" }, m.components.map((c) => renderComponent(m, c))));
  if (m.reactions.length) {
    body.append(el("div", { class: "reactions" }, m.reactions.map((r) => el("button", {
      class: r.me ? "reaction me" : "reaction", type: "button", dataset: { emoji: r.emoji },
      onclick: () => post("/api/react", { member, message: m.id, emoji: r.emoji }),
    }, `${r.emoji} ${r.count}`))));
  }
  if (m.ephemeral) {
    body.append(el("div", { class: "only-you" }, "👁 Only you can see this · ",
      el("button", { type: "button", onclick: () => { dismissed.add(m.id); render(); } }, "Dismiss message")));
  }
  const node = el("article", { class: m.ephemeral ? "message ephemeral" : "message", id: `m-${m.id}`, dataset: { messageId: m.id } });
  if (m.interaction) {
    node.append(el("div", { class: "reply-line" }, el("b", {}, m.interaction.user),
      m.interaction.command ? ` used /${m.interaction.command}` : " pressed a button"));
  }
  node.append(avatar(m.author.id, m.author.name), body);
  if (!m.ephemeral) {
    node.append(el("div", { class: "actions" }, el("button", {
      type: "button", class: "add-reaction", title: `React with ${CANCEL_EMOJI}`, dataset: { emoji: CANCEL_EMOJI },
      onclick: () => post("/api/react", { member, message: m.id, emoji: CANCEL_EMOJI }),
    }, CANCEL_EMOJI)));
  }
  return node;
}

// Re-renders only the messages that changed, keeping the scroll at the bottom if it was there.
function followBottom() {
  if (stickToBottom) $("messages").scrollTop = $("messages").scrollHeight;
}

function renderMessages() {
  const list = $("messages");
  const shown = state.messages.filter((m) => !dismissed.has(m.id));
  const keep = new Set(shown.map((m) => m.id));
  for (const [id, entry] of rendered) {
    if (!keep.has(id)) { entry.element.remove(); rendered.delete(id); }
  }
  let previous = null;
  for (const m of shown) {
    const json = JSON.stringify(m);
    let entry = rendered.get(m.id);
    if (!entry || entry.json !== json) {
      const element = renderMessage(m);
      if (entry) entry.element.replaceWith(element);
      entry = { json, element };
      rendered.set(m.id, entry);
    }
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (expected !== entry.element) list.insertBefore(entry.element, expected);
    previous = entry.element;
  }
  if (!shown.length && !list.querySelector(".empty")) {
    list.append(el("div", { class: "empty" }, "No messages yet. Type /imagine below and describe a picture."));
  } else if (shown.length) {
    list.querySelectorAll(".empty").forEach((e) => e.remove());
  }
  followBottom();
}

function renderMembers() {
  const list = $("members");
  list.replaceChildren(...state.members.map((m) => el("li", {},
    el("button", {
      type: "button", class: m.id === member ? "active" : "", dataset: { member: m.id, name: m.name },
      onclick: () => switchMember(m.id),
    }, avatar(m.id, m.name), m.name, m.role ? el("span", { class: "role" }, m.role) : null))));
}

function render() {
  if (!state) return;
  $("server-name").textContent = state.server;
  $("channel-name").textContent = state.channel.name;
  $("sidebar-channel").textContent = state.channel.name;
  renderMembers();
  renderMessages();
  if (command && !state.commands.some((c) => c.name === command.name)) chooseCommand(null);
}

// ------------------------------------------------------------------------------------------ live feed

function connect() {
  if (feed) feed.close();
  feed = new EventSource(member ? `/api/events?member=${encodeURIComponent(member)}` : "/api/events");
  feed.onmessage = (event) => {
    state = JSON.parse(event.data);
    member = state.me;
    $("live").textContent = "live";
    $("live").classList.add("on");
    render();
  };
  feed.onerror = () => {
    $("live").textContent = "reconnecting…";
    $("live").classList.remove("on");
  };
}

function switchMember(id) {
  if (id === member) return;
  member = id;
  history.replaceState(null, "", `?member=${id}`);
  rendered.clear();
  $("messages").replaceChildren();
  notice("");
  connect();
}

function locale() {
  return $("locale").value;
}

// ------------------------------------------------------------------------------------------ composer

function commandMatches(text) {
  const wanted = text.replace(/^\//, "").trim().toLowerCase();
  return state ? state.commands.filter((c) => c.name.startsWith(wanted) || wanted.startsWith(`${c.name} `)) : [];
}

function showCommandMenu() {
  const text = $("chatbox").value;
  const menu = $("command-menu");
  if (!text.startsWith("/") || (command && text === `/${command.name}`)) { menu.hidden = true; return; }
  const found = commandMatches(text);
  menu.replaceChildren(...found.map((c, i) => el("button", {
    type: "button", class: i === 0 ? "selected" : "", dataset: { command: c.name },
    onclick: () => chooseCommand(c),
  }, `/${c.name}`, el("span", { class: "desc" }, c.description))));
  menu.hidden = !found.length;
}

function optionField(option) {
  const name = option.name;
  const attrs = { dataset: { option: name }, name };
  let input;
  if (option.choices) {
    input = el("select", attrs, el("option", { value: "" }, "—"), option.choices.map((c) => el("option", { value: c.value }, c.name)));
  } else if (option.type === BOOLEAN) {
    input = el("select", attrs, el("option", { value: "" }, "—"), el("option", { value: "true" }, "True"), el("option", { value: "false" }, "False"));
  } else if ([USER, ROLE, MENTIONABLE, CHANNEL].includes(option.type)) {
    const choices = [
      ...([USER, MENTIONABLE].includes(option.type) ? state.users.map((u) => [u.id, `@${u.name}`]) : []),
      ...([ROLE, MENTIONABLE].includes(option.type) ? state.roles.map((r) => [r.id, `@${r.name}`]) : []),
      ...(option.type === CHANNEL ? state.channels.map((c) => [c.id, `#${c.name}`]) : []),
    ];
    input = el("select", attrs, el("option", { value: "" }, "—"), choices.map(([id, label]) => el("option", { value: id }, label)));
  } else if (option.type === INTEGER || option.type === NUMBER) {
    input = el("input", { ...attrs, type: "number", min: option.min_value, max: option.max_value, step: option.type === NUMBER ? "any" : 1 });
  } else {
    input = el("input", { ...attrs, type: "text", maxlength: option.max_length, placeholder: option.description });
  }
  return el("label", { class: name === "prompt" ? "opt wide" : "opt", title: option.description },
    el("span", {}, name, option.required ? el("span", { class: "req" }, " *") : null), input);
}

function chooseCommand(chosen) {
  command = chosen;
  const options = $("options");
  options.replaceChildren();
  $("command-menu").hidden = true;
  if (!chosen) return;
  $("chatbox").value = `/${chosen.name}`;
  const attachments = chosen.options.filter((o) => o.type === ATTACHMENT);
  const ordered = [...chosen.options.filter((o) => o.required), ...chosen.options.filter((o) => !o.required)];
  for (const option of ordered) if (option.type !== ATTACHMENT) options.append(optionField(option));
  if (attachments.length) {
    // One picker for all the attachment options (image1, image2, …), filled in order.
    options.append(el("label", { class: "opt", title: "Reference images" },
      el("span", {}, `images (up to ${attachments.length})`),
      el("input", { type: "file", multiple: attachments.length > 1, accept: "image/*", dataset: { option: "attachments" } })));
  }
  const first = options.querySelector("input, select");
  if (first) first.focus();
}

async function send(event) {
  event.preventDefault();
  if (!command) {
    const found = commandMatches($("chatbox").value);
    if (found.length) chooseCommand(found[0]);
    else notice("Type / and pick a command: this channel is for the bot's commands.");
    return;
  }
  const values = {};
  for (const input of $("options").querySelectorAll("[data-option]")) {
    if (input.type !== "file" && input.value !== "") values[input.dataset.option] = input.value;
  }
  const missing = command.options.filter((o) => o.required && o.type !== ATTACHMENT && !(o.name in values));
  if (missing.length) { notice(`Fill in ${missing.map((o) => o.name).join(", ")}.`); return; }
  const picker = $("options").querySelector('[data-option="attachments"]');
  const slots = command.options.filter((o) => o.type === ATTACHMENT);
  const chosen = picker ? [...picker.files] : [];
  if (chosen.length > slots.length) { notice(`At most ${slots.length} images.`); return; }
  const files = chosen.map((file, i) => [slots[i].name, file]);
  notice("");
  const sent = command;
  $("send").disabled = true;
  const answer = await post("/api/command", { member, command: sent.name, options: values, locale: locale() }, files);
  $("send").disabled = false;
  if (!answer.error) {
    chooseCommand(null);
    $("chatbox").value = "";
  }
}

// ------------------------------------------------------------------------------------------ forms

function modalInput(c) {
  const attrs = { dataset: { customId: c.custom_id, type: c.type } };
  if (c.type === 4) {
    const props = { ...attrs, placeholder: c.placeholder, required: c.required !== false, minlength: c.min_length, maxlength: c.max_length };
    const input = c.style === 2 ? el("textarea", props) : el("input", { ...props, type: "text" });
    input.value = c.value || "";
    return input;
  }
  if (c.type === 3) {
    return el("select", { ...attrs, multiple: (c.max_values || 1) > 1 },
      (c.options || []).map((o) => el("option", { value: o.value, selected: !!o.default }, o.label)));
  }
  if (c.type === 19) return el("input", { ...attrs, type: "file", accept: "image/*", multiple: (c.max_values || 1) > 1 });
  if ([5, 6, 7, 8].includes(c.type)) {
    const choices = c.type === 8 ? state.channels.map((x) => [x.id, `#${x.name}`])
      : [...(c.type !== 6 ? state.users.map((u) => [u.id, `@${u.name}`]) : []), ...(c.type !== 5 ? state.roles.map((r) => [r.id, `@${r.name}`]) : [])];
    return el("select", attrs, el("option", { value: "" }, "—"), choices.map(([id, label]) => el("option", { value: id }, label)));
  }
  return el("span", {}, "(this kind of input is not shown in the playground)");
}

function modalItem(c) {
  if (c.type === 18) {
    return el("label", {}, c.label, c.description ? el("span", { class: "hint" }, c.description) : null, modalInput(c.component));
  }
  if (c.type === 1) return (c.components || []).map((child) => el("label", {}, child.label || "", modalInput(child)));
  if (c.type === 10) return rich("p", "", c.content);
  return null;
}

function showModal(modal, interaction) {
  openModal = { interaction };
  $("modal-title").textContent = modal.title || "";
  $("modal-body").replaceChildren(...(modal.components || []).flatMap((c) => modalItem(c)).filter(Boolean));
  $("modal").showModal();
}

async function submitModal(event) {
  event.preventDefault();
  const values = {};
  const files = [];
  for (const input of $("modal-body").querySelectorAll("[data-custom-id]")) {
    const id = input.dataset.customId;
    if (input.type === "file") for (const file of input.files) files.push([id, file]);
    else if (input.tagName === "SELECT") values[id] = [...input.selectedOptions].map((o) => o.value).filter(Boolean);
    else values[id] = input.value;
  }
  $("modal").close();
  await post("/api/modal", { member, interaction: openModal.interaction, values }, files);
}

// ------------------------------------------------------------------------------------------ start

function start() {
  member = new URLSearchParams(location.search).get("member");
  $("chatbox").addEventListener("input", () => {
    if (command && $("chatbox").value !== `/${command.name}`) chooseCommand(null);
    showCommandMenu();
  });
  $("chatbox").addEventListener("keydown", (event) => {
    const first = $("command-menu").querySelector("button");
    if ((event.key === "Enter" || event.key === "Tab") && !$("command-menu").hidden && first) {
      event.preventDefault();
      first.click();
    }
  });
  $("messages").addEventListener("scroll", () => {
    const list = $("messages");
    stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  });
  $("composer").addEventListener("submit", send);
  $("modal-form").addEventListener("submit", submitModal);
  $("modal-cancel").addEventListener("click", () => $("modal").close());
  connect(); // without ?member=, the server picks the first member and the view says which ("me")
}

start();
