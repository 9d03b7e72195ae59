// The review page's keyboard and buttons: each decision is one POST to /-/review/verdict
// (form-encoded, with Datasette's CSRF token), answered in JSON. Without this script
// the same forms still work, one page load per decision.
"use strict";

const PATH = "/-/review";
const token = document.querySelector('meta[name="csrftoken"]').content;
const cards = () => Array.from(document.querySelectorAll("article.card"));
const undoStack = [];  // {verdictId, listingId} of this page's verdicts, latest last
let current = null;

function say(message) {
  document.getElementById("said").textContent = message;
}

function select(card, scroll = true) {
  if (!card) return;
  if (current) current.classList.remove("current");
  current = card;
  card.classList.add("current");
  card.focus({ preventScroll: true });
  if (scroll) card.scrollIntoView({ block: "start", behavior: "instant" });
}

function move(step) {
  const all = cards();
  const at = all.indexOf(current);
  select(all[Math.min(all.length - 1, Math.max(0, at + step))]);
}

function nextOpen(card) {
  const all = cards();
  for (let i = all.indexOf(card) + 1; i < all.length; i++) {
    if (!all[i].classList.contains("decided")) return all[i];
  }
  return card;
}

async function post(action, fields) {
  const body = new URLSearchParams({ csrftoken: token, ...fields });
  const response = await fetch(`${PATH}/${action}`, {
    method: "POST", body, credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  let answer;
  try {
    answer = await response.json();
  } catch (e) {
    answer = { ok: false, message: `not recorded: the server answered HTTP ${response.status}` };
  }
  return answer;
}

function count(step) {
  const open = document.getElementById("count");
  open.textContent = String(Number(open.textContent) + step);
}

function show(card, text, kind) {
  card.classList.remove("conflict", "error");
  if (kind) card.classList.add(kind);
  card.querySelector(".status").textContent = text;
}

async function decide(card, verdict, replacesId = "") {
  if (!card || card.dataset.busy) return;
  card.dataset.busy = "1";
  const note = card.querySelector("input.note").value;
  try {
    const answer = await post("verdict", {
      listing_id: card.dataset.listing, verdict, note,
      replaces_id: replacesId || card.dataset.decision || "",
    });
    if (answer.ok) {
      card.dataset.decision = answer.verdict_id;
      if (!card.classList.contains("decided")) count(-1);
      card.classList.add("decided");
      show(card, `${answer.verdict} — recorded by ${answer.decided_by} (verdict ${answer.verdict_id}); u undoes it`);
      undoStack.push({ verdictId: answer.verdict_id, listingId: card.dataset.listing });
      say(answer.message);
      select(nextOpen(card));
    } else if (answer.current_id !== undefined && answer.current_id !== null
               && String(answer.current_id) !== String(replacesId)) {
      show(card, answer.message, "conflict");
      if (window.confirm(`${answer.message}\n\nReplace it with ${verdict}?`)) {
        delete card.dataset.busy;
        return decide(card, verdict, String(answer.current_id));
      }
    } else {
      show(card, answer.message, "error");
      say(answer.message);
    }
  } finally {
    delete card.dataset.busy;
  }
}

async function undoLast() {
  const last = undoStack.pop();
  if (!last) {
    say("nothing to undo on this page");
    return;
  }
  const answer = await post("undo", { verdict_id: last.verdictId });
  const card = document.getElementById(`listing-${last.listingId}`);
  if (!answer.ok) {
    say(answer.message);
    if (card) show(card, answer.message, "error");
    return;
  }
  say(answer.message);
  if (card) {
    if (answer.verdict === "undone") {
      count(+1);
      card.classList.remove("decided");
      delete card.dataset.decision;
      show(card, `undone by you (verdict ${answer.verdict_id}): open again`);
    } else {
      card.dataset.decision = answer.verdict_id;
      show(card, `${answer.verdict} again (verdict ${answer.verdict_id})`);
    }
    select(card);
  }
}

const KEYS = { c: "counterfeit", g: "genuine", d: "dismissed" };

document.addEventListener("keydown", (event) => {
  const typing = event.target.closest("input, select, textarea");
  if (event.key === "Escape" && typing) {
    typing.blur();
    if (current) current.focus({ preventScroll: true });
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "j") move(1);
  else if (event.key === "k") move(-1);
  else if (KEYS[event.key]) decide(current, KEYS[event.key]);
  else if (event.key === "u") undoLast();
  else if (event.key === "n" && current) current.querySelector("input.note").focus();
  else if (event.key === "/") document.getElementById("filter-site").focus();
  else return;
  event.preventDefault();
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.classList.contains("decide")) return;  // the seller view's "all" form posts as is
  event.preventDefault();
  const card = form.closest("article.card");
  select(card, false);
  decide(card, event.submitter.value);
});

document.addEventListener("click", (event) => {
  const card = event.target.closest("article.card");
  if (card && !event.target.closest("a, button, input")) select(card, false);
});

const first = location.hash ? document.querySelector(location.hash.replace(/[^#\w-]/g, "")) : null;
select(first || cards()[0], Boolean(first));
