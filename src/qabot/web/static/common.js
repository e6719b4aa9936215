// Shared by the chat and admin pages. Every text that comes from the server or from a
// person is put into the page with textContent (through el()), never parsed as HTML.

/** A DOM element: el("p", {class: "x"}, "text", child, ...). Strings become text nodes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An error to show people: ``message`` is Vietnamese, ``code`` a stable identifier. */
export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const STATUS_MESSAGES = {
  401: "Vui lòng nhập mã quản trị.",
  403: "Bạn không có quyền thực hiện thao tác này.",
  404: "Không tìm thấy nội dung yêu cầu.",
  409: "Chỉ mục đang được cập nhật. Vui lòng thử lại sau ít phút.",
  413: "Nội dung gửi lên quá lớn.",
  422: "Dữ liệu gửi lên không hợp lệ.",
  503: "Dịch vụ chưa sẵn sàng. Vui lòng thử lại sau.",
};
export const NETWORK_ERROR =
  "Không kết nối được tới máy chủ. Vui lòng kiểm tra kết nối mạng rồi thử lại.";
export const TIMEOUT_ERROR =
  "Máy chủ phản hồi quá lâu. Vui lòng thử lại sau ít phút.";

/** The error a failed response stands for: the API's {detail, code} when it sent one. */
export function errorFromBody(status, body) {
  if (body && typeof body.detail === "string" && body.detail.trim()) {
    return new ApiError(body.detail, body.code || "http_error", status);
  }
  const message = STATUS_MESSAGES[status] || `Máy chủ gặp lỗi (mã ${status}). Vui lòng thử lại sau.`;
  return new ApiError(message, "http_error", status);
}

/** fetch() a JSON answer; throws ApiError with a readable message on any failure. */
export async function fetchJson(url, options = {}, timeoutMs = 120000) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(url, { ...options, signal: controller.signal });
  } catch (error) {
    if (error.name === "AbortError") throw new ApiError(TIMEOUT_ERROR, "timeout", 0);
    if (error instanceof TypeError && /header/i.test(error.message)) {
      throw new ApiError("Mã quản trị chỉ được gồm chữ không dấu, số và ký hiệu.", "bad_token", 0);
    }
    throw new ApiError(NETWORK_ERROR, "network", 0);
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw errorFromBody(response.status, body);
  return body;
}

/** The URL path of a document: its id may hold "/", each part is escaped on its own. */
export function documentPath(docId) {
  return "/documents/" + docId.split("/").map(encodeURIComponent).join("/");
}

/** "2018-07-11" -> "11/07/2018"; anything else as it is. */
export function formatDate(date) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
  return match ? `${match[3]}/${match[2]}/${match[1]}` : date || "";
}

/** 2048 -> "2 KB", like the server's human_size. */
export function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const trim = (x) => x.toFixed(1).replace(/\.0$/, "").replace(".", ",");
  if (bytes >= 1024 * 1024) return `${trim(bytes / (1024 * 1024))} MB`;
  if (bytes >= 1024) return `${trim(bytes / 1024)} KB`;
  return `${bytes} byte`;
}

/** A spinner with a label, for work that takes a while. */
export function spinner(label) {
  return el("span", { class: "busy", role: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }), label);
}
