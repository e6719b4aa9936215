// The admin page. The token is typed once, kept in sessionStorage (this tab only) and sent
// only in the Authorization header: never in a URL, never in a form field the browser submits.
import {
  ApiError,
  NETWORK_ERROR,
  documentPath,
  el,
  errorFromBody,
  fetchJson,
  formatDate,
  formatSize,
  spinner,
} from "./common.js";

const TOKEN_KEY = "qabot.adminToken";
const $ = (id) => document.getElementById(id);

// Reports asked for at a time. The server's default is 50; an address such as
// /admin?page_size=2 asks for another size (1 to 500, the most the server gives at once),
// which lets the "Xem thêm" button be tried without 50 reports.
const PAGE_SIZE = pageSize(new URLSearchParams(location.search).get("page_size"));
const FILTER_DELAY_MS = 250; // the list is fetched once the admin pauses typing
const MAX_FILTER_CHARS = 200; // as the server accepts

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let enabled = false;
let documents = []; // the rows shown: the pages fetched so far for `listQuery`
let total = 0; // reports matching `listQuery`, shown or not
let nextOffset = null; // where the next page starts; null when every match is shown
let listQuery = ""; // the filter the rows match, as the server echoed it
let listRequest = 0; // numbers the list requests; only the latest one's answer is shown
let filterTimer = 0;

function pageSize(asked) {
  const size = Number.parseInt(asked ?? "", 10);
  return Number.isNaN(size) ? 50 : Math.min(Math.max(size, 1), 500);
}

const signedIn = () => enabled && Boolean(token);
const authHeaders = () => (token ? { Authorization: `Bearer ${token}` } : {});

function show(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

function render() {
  $("login").hidden = !enabled || signedIn();
  $("upload").hidden = !signedIn();
  $("reindex").hidden = !signedIn();
  $("logout").hidden = !signedIn();
  renderDocuments();
}

function signOut(message = "") {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  render();
  show($("login-error"), message);
  if (enabled) $("token").focus();
}

/** Runs an admin call; a refused token sends the admin back to the login form. */
async function adminCall(call) {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut("Mã quản trị không đúng hoặc đã thay đổi. Vui lòng đăng nhập lại.");
    }
    throw error;
  }
}

// --- sign in ------------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const typed = $("token").value.trim();
  if (!typed) return;
  show($("login-error"), "");
  try {
    const config = await fetchJson("/admin/config", {
      headers: { Authorization: `Bearer ${typed}` },
    });
    if (!config.authorized) {
      show($("login-error"), "Mã quản trị không đúng.");
      return;
    }
  } catch (error) {
    show($("login-error"), error.message);
    return;
  }
  token = typed;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  render();
});

$("logout").addEventListener("click", () => signOut());

// --- index status -------------------------------------------------------------------------

function formatUptime(seconds) {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 1) return `${Math.round(seconds)} giây`;
  const hours = Math.floor(minutes / 60);
  if (hours < 1) return `${minutes} phút`;
  const days = Math.floor(hours / 24);
  return days >= 1 ? `${days} ngày ${hours % 24} giờ` : `${hours} giờ ${minutes % 60} phút`;
}

async function loadStatus() {
  const status = $("status");
  let rows;
  try {
    const health = await fetchJson("/health");
    rows = [
      ["Trạng thái", health.status === "ok" ? "Sẵn sàng" : health.status],
      ["Phiên bản chỉ mục", health.version],
      ["Số báo cáo", String(health.documents)],
      ["Số đoạn trích", String(health.passages)],
      ["Mô hình vector", health.embedder],
      ["Thời gian chạy", formatUptime(health.uptime_seconds)],
    ];
  } catch (error) {
    rows = [["Trạng thái", error.status === 503 ? "Chưa sẵn sàng" : "Không rõ"], ["Chi tiết", error.message]];
  }
  status.replaceChildren(...rows.flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]));
}

function summaryText(summary) {
  let text =
    `Chỉ mục hiện có ${summary.documents} báo cáo, ${summary.passages} đoạn trích ` +
    `(thêm ${summary.added}, sửa ${summary.changed}, xóa ${summary.removed}; ` +
    `${Number(summary.seconds).toFixed(1).replace(".", ",")} giây).`;
  for (const skipped of summary.skipped_files || []) {
    text += ` Bỏ qua ${skipped.source}: ${skipped.reason}.`;
  }
  return text;
}

$("reindex").addEventListener("click", async () => {
  const button = $("reindex");
  const result = $("reindex-result");
  button.disabled = true;
  result.hidden = false;
  result.className = "result";
  result.replaceChildren(spinner("Đang cập nhật chỉ mục…"));
  try {
    const body = await adminCall(() =>
      fetchJson("/reindex", { method: "POST", headers: authHeaders() }),
    );
    show(result, `Đã cập nhật. ${summaryText(body.summary)}`);
  } catch (error) {
    result.className = "result error-text";
    show(result, error.message);
  } finally {
    button.disabled = false;
  }
  loadStatus();
  loadDocuments();
});

// --- documents ----------------------------------------------------------------------------

const formatCount = (n) => new Intl.NumberFormat("vi-VN").format(n);
// The filter box's words, spaces collapsed as the server echoes them.
const typedFilter = () =>
  $("doc-filter").value.trim().replace(/\s+/g, " ").slice(0, MAX_FILTER_CHARS);

/** Fetches the first page of the reports matching the filter box, or with `more` the next
 *  page of the list shown, added below it. A request sent later wins: an earlier answer
 *  arriving after it (the admin kept typing) is dropped. */
async function loadDocuments({ more = false } = {}) {
  clearTimeout(filterTimer);
  const serial = ++listRequest;
  const params = new URLSearchParams({
    offset: String(more ? nextOffset : 0),
    limit: String(PAGE_SIZE),
  });
  const query = more ? listQuery : typedFilter();
  if (query) params.set("q", query);
  const button = $("doc-more");
  button.disabled = more;
  try {
    const page = await fetchJson(`/admin/documents?${params}`);
    if (serial !== listRequest) return;
    documents = more ? documents.concat(page.documents) : page.documents;
    total = page.total;
    nextOffset = page.next_offset;
    listQuery = page.query;
    show($("documents-error"), "");
  } catch (error) {
    if (serial !== listRequest) return;
    if (!more) {
      documents = [];
      total = 0;
      nextOffset = null;
      listQuery = query;
    }
    show($("documents-error"), error.message);
  } finally {
    if (serial === listRequest) button.disabled = false;
  }
  renderDocuments();
}

function countText() {
  if (!total) return listQuery ? `0 báo cáo khớp «${listQuery}»` : "";
  const matching = listQuery ? ` khớp «${listQuery}»` : "";
  if (documents.length < total) {
    return `Đang hiện ${formatCount(documents.length)}/${formatCount(total)} báo cáo${matching}`;
  }
  return `${formatCount(total)} báo cáo${matching}`;
}

function renderDocuments() {
  $("doc-count").textContent = countText();
  $("doc-more").hidden = nextOffset === null;
  const rows = documents.map((d) =>
    el(
      "tr",
      { dataset: { docId: d.doc_id } },
      el("td", { class: "doc-title" }, el("span", {}, d.title), el("small", {}, d.source)),
      el("td", { "data-label": "Ngày" }, formatDate(d.date) || "—"),
      el("td", { "data-label": "Số đoạn" }, String(d.paragraphs)),
      el("td", { "data-label": "Dung lượng" }, formatSize(d.size)),
      el(
        "td",
        { class: "actions" },
        signedIn()
          ? el("button", { type: "button", class: "danger small", onclick: () => remove(d) }, "Xóa")
          : null,
      ),
    ),
  );
  if (!rows.length) {
    const empty = listQuery ? `Không có báo cáo nào khớp «${listQuery}».` : "Chưa có báo cáo nào.";
    rows.push(el("tr", {}, el("td", { colspan: "5", class: "muted" }, empty)));
  }
  $("documents").tBodies[0].replaceChildren(...rows);
}

$("doc-filter").addEventListener("input", () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => loadDocuments(), FILTER_DELAY_MS);
});

$("doc-filter").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.isComposing) loadDocuments(); // no need to wait
});

$("doc-more").addEventListener("click", () => {
  // A filter typed but not fetched yet: its first page, not more of the old list.
  loadDocuments({ more: typedFilter() === listQuery });
});

function confirmDialog(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    $("confirm-ok").focus();
  });
}

async function remove(document_) {
  const question =
    `Xóa báo cáo «${document_.title}»? Tệp ${document_.source} sẽ bị xóa khỏi thư mục ` +
    "tài liệu và chỉ mục được cập nhật; thao tác này không hoàn tác được.";
  if (!(await confirmDialog(question))) return;
  const result = $("reindex-result");
  result.hidden = false;
  result.className = "result";
  result.replaceChildren(spinner("Đang xóa và cập nhật chỉ mục…"));
  try {
    const body = await adminCall(() =>
      fetchJson(documentPath(document_.doc_id), { method: "DELETE", headers: authHeaders() }),
    );
    show(result, `Đã xóa «${document_.title}». ${summaryText(body.summary)}`);
  } catch (error) {
    result.className = "result error-text";
    show(result, error.message);
  }
  loadStatus();
  loadDocuments();
}

// --- upload -------------------------------------------------------------------------------

/** POST the files with XMLHttpRequest, whose upload events give a progress bar. */
function sendFiles(files, onProgress, onSent) {
  const data = new FormData();
  for (const file of files) data.append("files", file, file.name);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/documents");
    request.setRequestHeader("Authorization", `Bearer ${token}`);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.upload.addEventListener("load", onSent);
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        body = null;
      }
      if (request.status === 201) resolve(body);
      else reject(errorFromBody(request.status, body));
    });
    request.addEventListener("error", () => reject(new ApiError(NETWORK_ERROR, "network", 0)));
    request.send(data);
  });
}

function showChosenFiles() {
  const files = Array.from($("files").files);
  $("file-names").textContent = files.length
    ? files.map((f) => `${f.name} (${formatSize(f.size)})`).join(", ")
    : "Chưa chọn tệp nào.";
}

$("files").addEventListener("change", showChosenFiles);

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = Array.from($("files").files);
  if (!files.length) {
    const result = $("upload-result");
    result.className = "result error-text";
    show(result, "Vui lòng chọn ít nhất một tệp để tải lên.");
    return;
  }
  const button = $("upload-button");
  const progress = $("upload-progress");
  const label = $("upload-label");
  const result = $("upload-result");
  button.disabled = true;
  result.hidden = true;
  result.className = "result";
  progress.hidden = false;
  progress.value = 0;
  label.textContent = "Đang gửi tệp… 0%";
  try {
    const body = await adminCall(() =>
      sendFiles(
        files,
        (share) => {
          progress.value = Math.round(share * 100);
          label.textContent = `Đang gửi tệp… ${Math.round(share * 100)}%`;
        },
        () => {
          progress.removeAttribute("value"); // indeterminate while the server indexes
          label.textContent = "Đã gửi xong, đang lập chỉ mục…";
        },
      ),
    );
    show(result, `Đã thêm ${body.doc_ids.length} báo cáo: ${body.doc_ids.join(", ")}. ${summaryText(body.summary)}`);
    $("files").value = "";
    showChosenFiles();
  } catch (error) {
    result.className = "result error-text";
    show(result, error.message);
  } finally {
    button.disabled = false;
    progress.hidden = true;
    label.textContent = "";
  }
  loadStatus();
  loadDocuments();
});

// --- start --------------------------------------------------------------------------------

async function start() {
  let config = { enabled: false, authorized: false };
  try {
    config = await fetchJson("/admin/config", { headers: authHeaders() });
  } catch (error) {
    show($("documents-error"), error.message);
  }
  enabled = config.enabled;
  $("disabled").hidden = enabled;
  if (!enabled) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
  } else if (token && !config.authorized) {
    signOut("Mã quản trị đã lưu không còn đúng. Vui lòng đăng nhập lại.");
  }
  render();
  loadStatus();
  loadDocuments();
}

start();
