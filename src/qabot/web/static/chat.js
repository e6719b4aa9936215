// The chat page: questions to POST /ask, answers as bubbles with their cited passages.
import { documentPath, el, fetchJson, formatDate, spinner } from "./common.js";

const TOP_K = 3; // passages shown under an answer: enough to check it, short on a phone
const MAX_HISTORY = 10; // the API takes at most 10 earlier questions
const EXAMPLES = 4;
const SLOW_MS = 6000; // past this the spinner says the answer takes longer than usual
const CONTEXT_RADIUS = 1;
const MAX_COMMENT = 1000; // the API keeps at most 1000 characters of a comment
// Tells the API this question comes from the chat page, so the question log's channel is "web".
const CLIENT_HEADERS = { "X-Qabot-Client": "web" };
const FEEDBACK_ERROR = "Chưa gửi được phản hồi. Vui lòng thử lại sau.";

const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const log = document.getElementById("log");
const welcome = document.getElementById("welcome");

// One conversation: its earlier questions are sent as `history` so a follow-up such as
// "Còn năm 2024 thì sao?" can be understood. "Câu hỏi mới" starts another.
let conversation = 0;
let turns = [];

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  input.value = "";
  resizeInput();
  ask(question);
  input.focus();
});

input.addEventListener("keydown", (event) => {
  // isComposing: Vietnamese input methods (Telex, VNI) use Enter while composing a word.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
input.addEventListener("input", resizeInput);

document.getElementById("new-chat").addEventListener("click", () => {
  conversation += 1; // answers still on their way belong to the old conversation
  turns = [];
  log.replaceChildren();
  welcome.hidden = false;
  input.value = "";
  resizeInput();
  input.focus();
});

function resizeInput() {
  input.style.height = "auto"; // CSSOM, which the page's CSP allows
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

async function loadExamples() {
  let questions = [];
  try {
    questions = (await fetchJson(`/examples?n=${EXAMPLES}`)).questions || [];
  } catch {
    return; // no index yet: the page works without examples
  }
  const list = document.getElementById("example-list");
  list.replaceChildren(
    ...questions.map((q) =>
      el("li", {}, el("button", { type: "button", class: "example", onclick: () => ask(q) }, q)),
    ),
  );
  document.getElementById("examples").hidden = questions.length === 0;
}

async function ask(question) {
  welcome.hidden = true;
  const mine = conversation;
  const history = turns
    .filter((t) => t.ok !== false)
    .map((t) => t.question)
    .slice(-MAX_HISTORY);
  const turn = { question, ok: null };
  turns.push(turn);

  const reply = el("div", { class: "bubble bot pending" }, spinner("Đang tìm câu trả lời…"));
  const item = el(
    "li",
    { class: "turn" },
    el("div", { class: "bubble user" }, el("p", {}, question)),
    reply,
  );
  log.append(item);
  item.scrollIntoView({ block: "end", behavior: "smooth" });
  const slow = setTimeout(() => {
    reply.replaceChildren(spinner("Câu hỏi này cần thêm thời gian, vui lòng chờ trong giây lát…"));
  }, SLOW_MS);

  let content;
  try {
    const answer = await fetchJson("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...CLIENT_HEADERS },
      body: JSON.stringify({ question, top_k: TOP_K, history }),
    });
    turn.ok = true;
    content = renderAnswer(answer);
  } catch (error) {
    turn.ok = false;
    reply.classList.add("error");
    content = [el("p", { class: "error-text", role: "alert" }, error.message)];
  } finally {
    clearTimeout(slow);
  }
  if (mine !== conversation) return;
  reply.classList.remove("pending");
  reply.replaceChildren(...content);
}

function renderAnswer(answer) {
  const parts = [];
  if (answer.interpreted_question && answer.interpreted_question !== answer.question) {
    parts.push(
      el("p", { class: "interpreted" }, "Hiểu là: ", el("q", {}, answer.interpreted_question)),
    );
  }
  if (!answer.found) {
    parts.push(
      el("p", { class: "not-found" }, "Không tìm thấy thông tin trả lời trong các báo cáo hiện có."),
      el(
        "p",
        { class: "hint" },
        "Bạn hãy thử diễn đạt lại câu hỏi: nêu rõ tên đơn vị, địa phương hoặc thời gian, " +
          "hoặc dùng từ ngữ như trong báo cáo.",
      ),
    );
    return parts;
  }
  parts.push(el("p", { class: "answer-text" }, answer.answer));
  // The passage the answer comes from (it holds the highlight) and the best one are shown;
  // the others wait behind one click, so an answer stays short on a phone.
  const main = answer.passages.filter((p, i) => i === 0 || p.highlight);
  const more = answer.passages.filter((p, i) => !(i === 0 || p.highlight));
  if (main.length) {
    parts.push(
      el("p", { class: "sources-label" }, "Nguồn trích dẫn"),
      el("ol", { class: "passages" }, main.map(renderPassage)),
    );
  }
  if (more.length) {
    parts.push(
      el(
        "details",
        { class: "more-passages" },
        el("summary", {}, `Xem thêm ${more.length} đoạn liên quan`),
        el("ol", { class: "passages" }, more.map(renderPassage)),
      ),
    );
  }
  // answer_id is null when the server keeps no question log: then there is nothing to rate.
  if (answer.answer_id) parts.push(feedbackBar(answer.answer_id));
  return parts;
}

/** POST /feedback; resolves on success, throws ApiError with a readable message otherwise. */
function sendFeedback(body) {
  return fetchJson("/feedback", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

function feedbackMessage(error) {
  return error && error.message ? error.message : FEEDBACK_ERROR;
}

/** 👍 / 👎 under an answer; after 👎 an optional one-line comment, offered once. */
function feedbackBar(answerId) {
  const status = el("p", { class: "feedback-status", role: "status", hidden: true });
  const up = el(
    "button",
    { type: "button", class: "vote", "aria-label": "Câu trả lời hữu ích", title: "Hữu ích", "aria-pressed": "false" },
    "👍",
  );
  const down = el(
    "button",
    { type: "button", class: "vote", "aria-label": "Câu trả lời sai", title: "Sai", "aria-pressed": "false" },
    "👎",
  );
  const bar = el(
    "div",
    { class: "feedback" },
    el("div", { class: "feedback-row" }, el("span", { class: "feedback-label" }, "Câu trả lời có đúng không?"), up, down),
    status,
  );

  async function vote(helpful, pressed) {
    up.disabled = down.disabled = true;
    pressed.setAttribute("aria-pressed", "true");
    status.classList.remove("error-text");
    status.replaceChildren(spinner("Đang gửi…"));
    status.hidden = false;
    try {
      await sendFeedback({ answer_id: answerId, helpful });
    } catch (error) {
      // Nothing was stored: the reader may press again.
      pressed.setAttribute("aria-pressed", "false");
      up.disabled = down.disabled = false;
      status.classList.add("error-text");
      status.replaceChildren(feedbackMessage(error));
      return;
    }
    status.replaceChildren("Cảm ơn bạn đã phản hồi.");
    if (!helpful) bar.append(commentForm(answerId));
  }
  up.addEventListener("click", () => vote(true, up));
  down.addEventListener("click", () => vote(false, down));
  return bar;
}

function commentForm(answerId) {
  const id = `comment-${answerId}`;
  const box = el("input", {
    type: "text",
    id,
    class: "comment-input",
    maxlength: MAX_COMMENT,
    placeholder: "Câu trả lời sai ở đâu? (không bắt buộc)",
    autocomplete: "off",
  });
  const send = el("button", { type: "submit", class: "secondary small" }, "Gửi góp ý");
  const result = el("p", { class: "comment-result", role: "status", hidden: true });
  const form = el(
    "form",
    { class: "feedback-comment" },
    el("label", { for: id, class: "visually-hidden" }, "Câu trả lời sai ở đâu? (không bắt buộc)"),
    el("div", { class: "row" }, box, send),
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const comment = box.value.trim();
    if (!comment) {
      box.focus();
      return;
    }
    box.disabled = send.disabled = true;
    result.classList.remove("error-text");
    result.replaceChildren(spinner("Đang gửi góp ý…"));
    result.hidden = false;
    try {
      await sendFeedback({ answer_id: answerId, helpful: false, comment });
    } catch (error) {
      box.disabled = send.disabled = false;
      result.classList.add("error-text");
      result.replaceChildren(feedbackMessage(error));
      return;
    }
    form.replaceWith(el("p", { class: "feedback-status comment-sent", role: "status" }, "Đã gửi góp ý của bạn."));
  });
  return form;
}

function renderPassage(passage) {
  const context = el("div", { class: "context", hidden: true });
  const toggle = el("button", { type: "button", class: "link", "aria-expanded": "false" }, "Xem đoạn gốc");
  toggle.addEventListener("click", () => toggleContext(passage, toggle, context));
  return el(
    "li",
    { class: "passage" },
    sourceLine(passage),
    el("blockquote", { class: "passage-text" }, highlighted(passage.text, passage.highlight)),
    toggle,
    context,
  );
}

function sourceLine(passage) {
  const meta = [
    passage.date ? formatDate(passage.date) : null,
    el("span", { class: "source-file" }, passage.source),
    `đoạn ${passage.paragraph}`,
  ].filter(Boolean);
  // Separators are text, so a wrapped line never starts with one.
  const joined = meta.flatMap((part, i) => (i ? [" · ", part] : [part]));
  return el(
    "div",
    { class: "source" },
    el("p", { class: "source-title" }, passage.title),
    el("p", { class: "source-meta" }, joined),
  );
}

/** The text with its answer span in <mark>; offsets count Unicode code points (Python). */
function highlighted(text, span) {
  if (!Array.isArray(span) || span.length !== 2) return [text];
  const chars = Array.from(text);
  const [start, end] = span;
  if (!(0 <= start && start < end && end <= chars.length)) return [text];
  return [
    chars.slice(0, start).join(""),
    el("mark", {}, chars.slice(start, end).join("")),
    chars.slice(end).join(""),
  ];
}

async function toggleContext(passage, toggle, context) {
  const open = toggle.getAttribute("aria-expanded") === "true";
  toggle.setAttribute("aria-expanded", String(!open));
  toggle.textContent = open ? "Xem đoạn gốc" : "Ẩn đoạn gốc";
  context.hidden = open;
  if (open || context.dataset.loaded) return;
  context.replaceChildren(spinner("Đang tải đoạn gốc…"));
  const url = `${documentPath(passage.doc_id)}/paragraphs/${passage.paragraph}?radius=${CONTEXT_RADIUS}`;
  try {
    const data = await fetchJson(url);
    context.dataset.loaded = "1";
    context.replaceChildren(
      el("p", { class: "context-title" }, `Đoạn ${data.paragraph} trong «${data.document.title}»`),
      ...data.paragraphs.map((p) =>
        el(
          "div",
          { class: `context-paragraph ${p.number === data.paragraph ? "cited" : ""} ${p.kind}` },
          el("span", { class: "paragraph-number" }, `Đoạn ${p.number}`),
          el("p", {}, p.text),
        ),
      ),
    );
  } catch (error) {
    context.replaceChildren(el("p", { class: "error-text" }, error.message));
  }
}

loadExamples();
input.focus();
