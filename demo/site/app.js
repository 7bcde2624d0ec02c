// The demo widget: asks the guest-token service for a guest token, keeps it fresh, and says in
// words what every failure means. Plain JavaScript, no build step; settings come from config.json.
"use strict";

const GUEST_TOKEN_PATH = "/api/webchat/guest-token";

/**
 * Every failure in words, for every flow of the page, keyed by the `code` of the service's
 * RFC 9457 problem bodies (and, last, the failures the page detects itself). Each message gets
 * the facts known about the failure: `wait` (its Retry-After in words, or null), `detail` (the
 * problem's), `origin` (this page's) and `api` (the service's base URL).
 */
const MESSAGES = {
  rate_limited: (f) =>
    `Too many requests: the service, or Genesys behind it, is rate limiting. Try again in ${f.wait ?? "a moment"}.`,
  not_ready: (f) =>
    `The service is not ready: it is starting (no Genesys access yet) or shutting down. Try again in ${f.wait ?? "a few seconds"}.`,
  origin_not_allowed: (f) =>
    `This page's origin (${f.origin}) is not allowed by the service. Add it to the service's FRONTEND_ORIGIN to let it in.`,
  not_signed_in: () => "You are not signed in. Sign in to the site, then start the chat again.",
  site_session_invalid: () =>
    "Your sign-in has expired or is no longer valid. Sign in again, then start the chat again.",
  deployment_inactive: () =>
    "Chat is switched off: the Genesys web-messaging deployment is not active. An administrator has to activate it.",
  invalid_request: (f) => `The service refused the request as invalid: ${f.detail}`,
  queue_not_allowed: () => "The service does not offer this chat queue.",
  unknown_queue: () => "Genesys does not know this chat queue: check queueId in the page's settings.",
  payload_too_large: (f) => `The request was too large for the service: ${f.detail}`,
  unsupported_media_type: (f) => `The service did not accept the request's format: ${f.detail}`,
  upstream_auth_failed: () =>
    "The service cannot sign in to Genesys (its credentials were refused). Chat is unavailable until an operator fixes that.",
  upstream_error: () => "Genesys is having trouble right now. Try again in a moment.",
  upstream_timeout: () => "Genesys did not answer in time. Try again in a moment.",
  internal_error: () =>
    "Something went wrong inside the service. Try again; if it keeps happening, quote the request id.",
  not_found: (f) => `The service has no such route: check apiBaseUrl (${f.api}) in the page's settings.`,
  method_not_allowed: (f) => `The service has no such route: check apiBaseUrl (${f.api}) in the page's settings.`,
  // Detected by the page: fetch failed and the service does not answer at all.
  unreachable: (f) => `The service cannot be reached at ${f.api}. Is it running? (cargo xtask up)`,
};

/** Failures worth trying again on their own: after Retry-After, else after a growing pause. */
const RETRYABLE = new Set([
  "rate_limited",
  "not_ready",
  "upstream_error",
  "upstream_timeout",
  "internal_error",
  "unreachable",
]);

/** A refused or failed call: the problem's fields, or what the page found out itself. */
class Failure extends Error {
  constructor({ code, status = 0, title = null, detail = null, retryAfterSeconds = null, requestId = null }) {
    super(code);
    this.code = code;
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfterSeconds = retryAfterSeconds;
    this.requestId = requestId;
  }
}

/** The failure in words, from the MESSAGES table, else from the problem's own title and detail. */
function describe(failure, config) {
  const facts = {
    wait: failure.retryAfterSeconds === null ? null : inWords(failure.retryAfterSeconds),
    detail: failure.detail ?? failure.title ?? "no details given",
    origin: window.location.origin,
    api: config.apiBaseUrl,
  };
  const message = MESSAGES[failure.code];
  if (message) {
    return message(facts);
  }
  const what = [failure.title, failure.detail].filter(Boolean).join(": ");
  return failure.status
    ? `The service refused the request (${failure.status}${what ? `, ${what}` : ""}).`
    : `The page failed: ${what || failure.code}.`;
}

/** POSTs JSON to the service; resolves with the body and request id, or rejects with a Failure. */
async function postJson(config, path, body, { credentials = "omit" } = {}) {
  let response;
  try {
    response = await fetch(config.apiBaseUrl + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials,
      cache: "no-store",
    });
  } catch {
    throw await networkFailure(config);
  }
  const data = await response.json().catch(() => null);
  // Both headers reach this script only because the service exposes them through CORS.
  const requestId = response.headers.get("X-Request-ID") ?? data?.requestId ?? null;
  if (response.ok) {
    return { data, requestId };
  }
  throw new Failure({
    code: data?.code ?? `http_${response.status}`,
    status: response.status,
    title: data?.title ?? response.statusText,
    detail: data?.detail ?? null,
    retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After")),
    requestId,
  });
}

/**
 * Why fetch failed: it only says "TypeError", whether CORS withheld the answer or nothing answered.
 * A no-cors request succeeds whenever the server answers at all, so a service that answers it
 * refused this page's origin; one that does not is unreachable.
 */
async function networkFailure(config) {
  try {
    await fetch(`${config.apiBaseUrl}/livez`, { mode: "no-cors", credentials: "omit", cache: "no-store" });
    return new Failure({ code: "origin_not_allowed" });
  } catch {
    return new Failure({ code: "unreachable" });
  }
}

/** Retry-After as whole seconds (delta-seconds or an HTTP date), or null. */
function parseRetryAfter(value) {
  if (value === null) {
    return null;
  }
  if (/^\d+$/.test(value.trim())) {
    return Number(value.trim());
  }
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** "1 second", "45 seconds", "2 minutes", "3 hours". */
function inWords(seconds) {
  if (seconds < 90) {
    return seconds === 1 ? "1 second" : `${seconds} seconds`;
  }
  if (seconds < 90 * 60) {
    return `${Math.round(seconds / 60)} minutes`;
  }
  const hours = Math.round(seconds / 3600);
  return hours === 1 ? "1 hour" : `${hours} hours`;
}

/** A time span as m:ss or h:mm:ss. */
function span(milliseconds) {
  const total = Math.max(0, Math.ceil(milliseconds / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/** A moment as this browser's local time of day. */
function clock(milliseconds) {
  return new Date(milliseconds).toLocaleTimeString([], { hour12: false });
}

/**
 * How long before expiry to renew: a tenth of the lifetime, at least a minute, but never more than
 * half of it (so a short-lived token is still used before it is replaced).
 */
function renewalLeadSeconds(ttlSeconds) {
  return Math.min(Math.max(60, ttlSeconds / 10), ttlSeconds / 2);
}

/** The "Guest token (tutorial flow)" panel: get a token, show it, renew it, explain failures. */
class GuestTokenPanel {
  constructor(config) {
    this.config = config;
    const field = (name) => document.getElementById(`guest-${name}`);
    this.el = {
      button: field("get"),
      queue: field("queue"),
      guestId: field("id"),
      expiresAt: field("expires-at"),
      countdown: field("countdown"),
      next: field("next"),
      requestId: field("request-id"),
      status: field("status"),
      count: field("count"),
      log: field("log"),
    };
    this.token = null; // { guestId, expiresAt, expiresAtMs }
    this.next = null; // the next automatic attempt: { atMs, reason, label }
    this.failuresInARow = 0;
    this.busy = false;
    this.fetched = 0;
    this.lastRequestId = null;

    this.el.queue.textContent = config.queueId;
    this.el.button.addEventListener("click", () => this.fetchToken("on request"));
    // One clock drives the countdown and the attempts, so a throttled background tab catches up.
    setInterval(() => this.tick(), 250);
    document.addEventListener("visibilitychange", () => this.tick());
  }

  tick() {
    if (this.next && !this.busy && Date.now() >= this.next.atMs) {
      this.fetchToken(this.next.reason);
    }
    this.render();
  }

  async fetchToken(reason) {
    if (this.busy) {
      return;
    }
    this.busy = true;
    this.next = null;
    this.el.button.disabled = true;
    this.setStatus("pending", reason === "by automatic renewal" ? "Renewing the guest token…" : "Asking the service for a guest token…");
    this.render();
    try {
      const { data, requestId } = await postJson(this.config, GUEST_TOKEN_PATH, { queueId: this.config.queueId });
      this.accept(data, requestId, reason);
    } catch (error) {
      this.reject(error instanceof Failure ? error : new Failure({ code: "page_error", detail: String(error) }), reason);
    } finally {
      this.busy = false;
      this.el.button.disabled = false;
      this.render();
    }
  }

  accept(data, requestId, reason) {
    const receivedAt = Date.now();
    // Counted on this browser's clock from ttlSeconds, so a skewed clock cannot shorten or stretch it.
    const expiresAtMs = receivedAt + data.ttlSeconds * 1000;
    this.token = { guestId: data.guestId, expiresAt: data.expiresAt, expiresAtMs };
    this.next = {
      atMs: expiresAtMs - renewalLeadSeconds(data.ttlSeconds) * 1000,
      reason: "by automatic renewal",
      label: "automatic renewal",
    };
    this.failuresInARow = 0;
    this.fetched += 1;
    this.lastRequestId = requestId;
    this.setStatus("ok", `Token valid: received ${reason} at ${clock(receivedAt)}. A widget would now start the chat with it.`);
    this.log(`${clock(receivedAt)} 201 guest ${data.guestId} ${reason}, valid for ${inWords(data.ttlSeconds)}`);
  }

  reject(failure, reason) {
    const now = Date.now();
    this.failuresInARow += 1;
    this.lastRequestId = failure.requestId;
    if (RETRYABLE.has(failure.code)) {
      const waitSeconds = failure.retryAfterSeconds ?? Math.min(60, 5 * 2 ** (this.failuresInARow - 1));
      this.next = { atMs: now + waitSeconds * 1000, reason: "by automatic retry", label: "automatic retry" };
    }
    const valid = this.token && this.token.expiresAtMs > now;
    const keep = valid ? " The current token stays valid until it expires." : "";
    this.setStatus("error", describe(failure, this.config) + keep);
    this.log(`${clock(now)} ${failure.status || "no answer"} ${failure.code} ${reason}`);
  }

  setStatus(state, text) {
    this.el.status.dataset.state = state;
    this.el.status.textContent = text;
  }

  log(line) {
    const item = document.createElement("li");
    item.textContent = line;
    this.el.log.prepend(item);
    while (this.el.log.children.length > 8) {
      this.el.log.lastElementChild.remove();
    }
  }

  render() {
    const now = Date.now();
    const token = this.token;
    this.el.guestId.textContent = token ? token.guestId : "—";
    this.el.expiresAt.textContent = token ? `${token.expiresAt} (${clock(Date.parse(token.expiresAt))} local time)` : "—";
    const left = token ? token.expiresAtMs - now : 0;
    this.el.countdown.textContent = token ? (left > 0 ? span(left) : "expired") : "—";
    this.el.countdown.dataset.state = token && left <= 0 ? "expired" : "";
    if (this.busy) {
      this.el.next.textContent = "in progress…";
    } else if (this.next) {
      this.el.next.textContent = `${this.next.label} at ${clock(this.next.atMs)} (in ${span(this.next.atMs - now)})`;
    } else {
      this.el.next.textContent = "none: press the button to try again";
    }
    this.el.requestId.textContent = this.lastRequestId ?? "—";
    this.el.count.textContent = this.fetched === 1 ? "1 token" : `${this.fetched || "no"} tokens`;
  }
}

async function main() {
  const status = document.getElementById("guest-status");
  let config;
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) {
      throw new Error(`it answered ${response.status}`);
    }
    config = await response.json();
  } catch (error) {
    status.dataset.state = "error";
    status.textContent = `The page cannot read its settings from config.json: ${error.message}`;
    return;
  }
  document.getElementById("page-origin").textContent = window.location.origin;
  document.getElementById("api-base").textContent = config.apiBaseUrl;
  new GuestTokenPanel(config).fetchToken("on page load");
}

main();
