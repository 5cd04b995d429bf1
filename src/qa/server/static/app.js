// qa web page: ask, read ranked passages, copy citations, open the cited article.
// Routes live in the hash: #/ask?q=...  and  #/documents/{doc_id}?passage={passage_id}
"use strict";

const MAX_QUESTION = 2000;
const K = 5;

const $ = (id) => document.getElementById(id);
const form = $("ask-form");
const input = $("question");
const button = $("ask-button");
const statusBox = $("status");
const view = $("view");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child);
  }
  return node;
}

function setStatus(message, isError) {
  statusBox.textContent = message || "";
  statusBox.classList.toggle("error", Boolean(isError));
}

// --- errors in words a person understands --------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function explain(error, what) {
  if (!(error instanceof ApiError)) {
    return "The server cannot be reached. Check that `qa serve` is running, then try again.";
  }
  const message = (error.body && error.body.error && error.body.error.message) || "";
  switch (error.status) {
    case 422:
      if (/characters long|at most 2000|string_too_long|too long/i.test(message)) {
        return `Your question is too long (limit ${MAX_QUESTION.toLocaleString("en")} characters).`;
      }
      if (/empty|at least 1/i.test(message)) return "Please type a question first.";
      return `The question could not be asked as written (${message}).`;
    case 413:
      return `Your question is too long (limit ${MAX_QUESTION.toLocaleString("en")} characters).`;
    case 404:
      return what === "document"
        ? "That article is not in the index any more."
        : "That passage is not in the index any more: the article may have been edited.";
    case 503:
      return "The index is not ready: it has not been built yet or is being rebuilt. Try again in a moment " +
        "(whoever runs the server may need to run `qa build`).";
    case 500:
      return "Something went wrong on the server. Please try again.";
    default:
      return `The server answered with an error (${error.status}). Please try again.`;
  }
}

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, Object.assign({ headers: { Accept: "application/json" } }, options));
  } catch (networkError) {
    throw new Error("network");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (notJson) {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// --- copy ------------------------------------------------------------------------------------

async function copyText(text, source) {
  // Always leave the copied text where a person (or a test) can read it back.
  const buffer = $("copy-buffer");
  buffer.value = text;
  document.body.dataset.copied = text;
  if (source) source.dataset.copied = text;
  let copied = false;
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (denied) {
      copied = false;
    }
  }
  if (!copied) {
    const focused = document.activeElement;
    buffer.select();
    try {
      copied = document.execCommand("copy");
    } catch (unsupported) {
      copied = false;
    }
    if (focused && focused.focus) focused.focus();
  }
  setStatus(copied ? "Citation copied." : "Copying is blocked here: the citation is shown below the passage to copy by hand.");
  return copied;
}

// --- the answer view -------------------------------------------------------------------------

function documentLink(docId, passageId) {
  return `#/documents/${encodeURIComponent(docId)}?passage=${encodeURIComponent(passageId)}`;
}

function metaLine(citation) {
  const parts = [];
  if (citation.author) parts.push(citation.author);
  if (citation.outlet) parts.push(citation.outlet);
  if (citation.published) parts.push(citation.published);
  parts.push(`${citation.source}, characters ${citation.start}–${citation.end}`);
  // A PDF's passage: the printed page labels it spans ("p. 12", "pp. 12–13").
  const pages = citation.pages || [];
  if (pages.length === 1) parts.push(`p. ${pages[0]}`);
  if (pages.length > 1) parts.push(`pp. ${pages[0]}–${pages[pages.length - 1]}`);
  return parts.join(" · ");
}

function highlightedText(text, highlights) {
  const fragment = document.createDocumentFragment();
  let position = 0;
  const spans = (highlights || []).slice().sort((a, b) => a.start - b.start);
  for (const h of spans) {
    if (h.start < position || h.end > text.length) continue;
    fragment.append(text.slice(position, h.start));
    fragment.append(el("mark", { class: "highlight", title: `answers the question (similarity ${h.score.toFixed(2)})`, text: text.slice(h.start, h.end) }));
    position = h.end;
  }
  fragment.append(text.slice(position));
  return fragment;
}

function renderResult(result) {
  const c = result.citation;
  const citationLine = el("p", { class: "citation-text", text: c.formatted });
  const also = result.also_reported_in.length
    ? el("div", { class: "also" },
        el("strong", { text: "Also reported in:" }),
        el("ul", {}, ...result.also_reported_in.map((other) =>
          el("li", {},
            el("a", { href: documentLink(other.citation.doc_id, other.passage_id), text: other.citation.title }),
            ` (${other.citation.source}, similarity ${other.similarity.toFixed(2)})`))))
    : null;
  const copyButton = (label, text) => el("button", {
    type: "button", class: "secondary copy", "data-format": label.toLowerCase().includes("markdown") ? "markdown" : "text",
    onclick: (event) => copyText(text, event.currentTarget), text: label,
  });
  return el("li", {},
    el("article", { class: "result", tabindex: "0", "aria-labelledby": `title-${result.rank}`, "data-passage-id": result.passage_id },
      el("h2", { id: `title-${result.rank}` }, el("span", { class: "rank", text: `${result.rank}.` }), c.title),
      el("p", { class: "meta", text: metaLine(c) }),
      el("blockquote", { class: "passage" }, highlightedText(result.text, result.highlights)),
      also,
      el("div", { class: "actions" },
        copyButton("Copy citation (Markdown)", c.markdown),
        copyButton("Copy citation (text)", c.formatted),
        el("a", { class: "button secondary open-document", href: documentLink(c.doc_id, result.passage_id), text: "Open in the article" })),
      citationLine));
}

let latest = 0; // only the newest request may change the page

async function ask(question) {
  const ticket = ++latest;
  input.value = question;
  const text = question.trim();
  if (!text) {
    setStatus("Please type a question first.", true);
    return;
  }
  if (text.length > MAX_QUESTION) {
    button.disabled = false;
    setStatus(`Your question is too long (limit ${MAX_QUESTION.toLocaleString("en")} characters).`, true);
    view.replaceChildren();
    return;
  }
  button.disabled = true;
  setStatus("Searching…");
  try {
    const answer = await api(`/ask?${new URLSearchParams({ q: text, k: String(K) })}`);
    if (ticket !== latest) return;
    setStatus("");
    const children = [];
    if (!answer.grounded) {
      children.push(el("p", { class: "notice", id: "not-grounded", text: "No passage clearly answers this. The closest passages follow." }));
    }
    if (!answer.results.length) {
      children.push(el("p", { text: "No passages found." }));
    } else {
      children.push(el("p", { class: "answered", text: `${answer.results.length} passages, best first (build ${answer.build_id}).` }));
      children.push(el("ol", { class: "results", id: "results" }, ...answer.results.map(renderResult)));
    }
    view.replaceChildren(...children);
    view.dataset.grounded = String(answer.grounded);
  } catch (error) {
    if (ticket !== latest) return;
    view.replaceChildren();
    setStatus(explain(error, "answer"), true);
  } finally {
    if (ticket === latest) button.disabled = false;
  }
}

// --- the document view -----------------------------------------------------------------------

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Where the passage sits in the cleaned text: the same words, whatever the line breaks.
function locate(cleaned, passageText) {
  const exact = cleaned.indexOf(passageText);
  if (exact >= 0) return [exact, exact + passageText.length];
  const words = passageText.split(/\s+/).filter(Boolean).map(escapeRegExp);
  if (!words.length) return null;
  const match = new RegExp(words.join("\\s+")).exec(cleaned);
  return match ? [match.index, match.index + match[0].length] : null;
}

function paragraphs(text, from, to) {
  // Paragraphs of text[from:to], keeping blank-line breaks as paragraph breaks.
  return text.slice(from, to).split(/\n\s*\n/);
}

async function showDocument(docId, passageId) {
  const ticket = ++latest;
  setStatus("Opening the article…");
  try {
    const [doc, passage] = await Promise.all([
      api(`/documents/${encodeURIComponent(docId)}`),
      passageId ? api(`/passages/${encodeURIComponent(passageId)}`).catch((error) => ({ error })) : Promise.resolve(null),
    ]);
    if (ticket !== latest) return;
    const head = [el("h2", { text: doc.title }), el("p", { class: "meta", text: [doc.author, doc.outlet, doc.published, doc.source].filter(Boolean).join(" · ") })];
    if (doc.url) head.push(el("p", {}, el("a", { href: doc.url, rel: "noopener noreferrer", text: "Original article" })));
    const body = el("div", { class: "document-text" });
    const cleaned = doc.cleaned_text;
    const span = passage && !passage.error ? locate(cleaned, passage.text) : null;
    const addParagraphs = (from, to, target) => {
      paragraphs(cleaned, from, to).forEach((piece, i) => {
        if (i > 0) target.push(null);
        target.push(piece);
      });
    };
    // A flat list of strings (null = paragraph break) and the one <mark>, then grouped into <p>s.
    const pieces = [];
    if (span) {
      addParagraphs(0, span[0], pieces);
      pieces.push(el("mark", { class: "cited", id: "cited", tabindex: "-1", text: cleaned.slice(span[0], span[1]) }));
      addParagraphs(span[1], cleaned.length, pieces);
    } else {
      addParagraphs(0, cleaned.length, pieces);
    }
    let p = el("p");
    const paras = [p];
    for (const piece of pieces) {
      if (piece === null) {
        p = el("p");
        paras.push(p);
      } else {
        p.append(piece);
      }
    }
    const notices = [];
    if (passage && passage.error) notices.push(el("p", { class: "notice", text: explain(passage.error, "passage") + " Here is the article as it is now." }));
    const actions = [];
    if (passage && !passage.error) {
      actions.push(el("div", { class: "actions" },
        el("button", { type: "button", class: "secondary copy", "data-format": "markdown", onclick: (e) => copyText(passage.citation.markdown, e.currentTarget), text: "Copy citation (Markdown)" }),
        el("button", { type: "button", class: "secondary copy", "data-format": "text", onclick: (e) => copyText(passage.citation.formatted, e.currentTarget), text: "Copy citation (text)" })));
    }
    const back = el("p", {}, el("a", { href: "#/", id: "back", onclick: (e) => { e.preventDefault(); history.back(); }, text: "← Back to the answers" }));
    view.replaceChildren(back, ...notices, el("article", { class: "document", id: "document", "data-doc-id": doc.doc_id }, ...head, ...actions, body));
    body.append(...paras.filter((x) => x.childNodes.length));
    setStatus("");
    const mark = $("cited");
    if (mark) {
      mark.scrollIntoView({ block: "center" });
      mark.focus({ preventScroll: true });
    } else {
      $("document").scrollIntoView({ block: "start" });
    }
  } catch (error) {
    if (ticket !== latest) return;
    view.replaceChildren();
    setStatus(explain(error, "document"), true);
  }
}

// --- routing ---------------------------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const documentMatch = path.match(/^\/documents\/(.+)$/);
  if (documentMatch) {
    showDocument(decodeURIComponent(documentMatch[1]), params.get("passage"));
  } else if (path === "/ask" && params.get("q")) {
    ask(params.get("q"));
  } else {
    latest += 1;
    view.replaceChildren();
    setStatus("");
    input.focus();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) {
    setStatus("Please type a question first.", true);
    return;
  }
  const target = `#/ask?${new URLSearchParams({ q: question })}`;
  if (location.hash === target) ask(question);
  else location.hash = target;
});

window.addEventListener("hashchange", route);
route();
