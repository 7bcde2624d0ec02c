// The demo widget: asks the guest-token service for a guest token and keeps it fresh (tutorial
// flow), opens an authenticated web-messaging chat for a signed-in visitor (Messenger and custom-
// widget modes), and says in words what every failure means. Plain JavaScript, no build step;
// settings come from config.json.
"use strict";

const GUEST_TOKEN_PATH = "/api/webchat/guest-token";
const AUTH_CODE_PATH = "/api/webmessaging/auth-code";
const STAND_IN_LOGIN_PATH = "stand-in-login";
// Genesys' web-messaging token routes, which a browser calls without any Genesys credential.
const OAUTH_EXCHANGE_PATH = "/api/v2/webdeployments/token/oauthcodegrantjwtexchange";
const REVOKE_PATH = "/api/v2/webdeployments/token/revoke";
/** Where the stand-in login's site session is kept: this tab only, gone when it closes. */
const SESSION_STORAGE_KEY = "demo.siteSession";

/**
 * Every failure in words, for every flow of the page, keyed by the `code` of the service's
 * RFC 9457 problem bodies, then by the page's names for Genesys' error codes (GENESYS_CODES), and
 * last by the failures the page detects itself. Each message gets the facts known about the
 * failure: `wait` (its Retry-After in words, or null), `detail` (the problem's), `origin` (this
 * page's) and `service` (the base URL that was called).
 */
const MESSAGES = {
  rate_limited: (f) =>
    `Too many requests: the service, or Genesys behind it, is rate limiting. Try again in ${f.wait ?? "a moment"}.`,
  not_ready: (f) =>
    `The service is not ready: it is starting (no Genesys access yet) or shutting down. Try again in ${f.wait ?? "a few seconds"}.`,
  origin_not_allowed: (f) =>
    `This page's origin (${f.origin}) is not allowed by the service. Add it to the service's FRONTEND_ORIGIN to let it in (for chat, the Genesys deployment must allow it too).`,
  not_signed_in: () =>
    "You are not signed in, and this service chats with signed-in visitors only. Sign in, then start the chat again.",
  site_session_invalid: (f) =>
    `Your sign-in has expired or is no longer valid. The service says: "${f.detail}".`,
  deployment_inactive: (f) =>
    `Chat is switched off: the Genesys web-messaging deployment is not active. An administrator has to activate it; try again in ${f.wait ?? "a while"}.`,
  deployment_unavailable: (f) =>
    `Chat is unavailable: the service cannot read the Genesys web-messaging deployment right now. Try again in ${f.wait ?? "a minute"}.`,
  identity_exchange_failed: () =>
    "Genesys refused to start an authenticated chat for you: the identity exchange failed. The operator has been alerted; try again later.",
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
  not_found: (f) =>
    `The service at ${f.service} has no such route: is web messaging configured there, and is the base URL in the page's settings right?`,
  method_not_allowed: (f) => `The service has no such route: check the base URL (${f.service}) in the page's settings.`,
  // Genesys' refusals (see GENESYS_CODES).
  genesys_origin_not_allowed: (f) =>
    `Genesys' web-messaging deployment does not allow this page's origin (${f.origin}): add it to the deployment's allowed domains.`,
  code_rejected: () =>
    "Genesys could not redeem the sign-in code: it was already used or has expired. Start the chat again for a new one.",
  identity_provider_failed: (f) =>
    `Genesys could not check who you are with the site's identity provider (this service): ${f.detail}`,
  authentication_not_configured: () =>
    "Genesys' web-messaging deployment has no OpenID Connect integration, so it cannot chat with signed-in visitors.",
  deployment_not_found: () => "Genesys does not know this web-messaging deployment: check deploymentId in the page's settings.",
  token_not_accepted: () => "Genesys did not accept the messaging token: it is already revoked or has expired.",
  session_refused: (f) =>
    `Genesys refused the chat session ("${f.detail}"): its messaging token was revoked or has expired. Start the chat again for a new one.`,
  // The stand-in login's refusals.
  sign_in_unavailable: () =>
    "Sign-in is unavailable: demo-server runs without a site-session key (--site-session-key-file), so the stand-in login is off.",
  invalid_sign_in: (f) => `The stand-in login refused the form: ${f.detail}`,
  // Detected by the page: fetch failed and the service does not answer at all.
  unreachable: (f) => `The service cannot be reached at ${f.service}. Is it running? (cargo xtask up)`,
  genesys_unreachable: (f) => `Genesys cannot be reached at ${f.service}. Is the emulator running? (cargo xtask up)`,
  websocket_failed: (f) =>
    `The chat connection to ${f.service} failed: Genesys refused it (the deployment is not active or does not allow this page's origin) or cannot be reached.`,
  websocket_closed: (f) => `The chat connection closed (${f.detail}). Start the chat again to reconnect.`,
};

/** Genesys' error codes (its error bodies' `code`) as the page's names in MESSAGES. */
const GENESYS_CODES = {
  "deployment.not.active": "deployment_inactive",
  "origin.not.allowed": "genesys_origin_not_allowed",
  "too.many.requests.retry.after": "rate_limited",
  "authorization.code.invalid": "code_rejected",
  "id.token.invalid": "identity_provider_failed",
  "identity.provider.discovery.failed": "identity_provider_failed",
  "identity.provider.token.failed": "identity_provider_failed",
  "identity.provider.jwks.failed": "identity_provider_failed",
  "identity.provider.client.rejected": "identity_provider_failed",
  "deployment.authentication.not.configured": "authentication_not_configured",
  "not.found": "deployment_not_found",
  "bad.credentials": "token_not_accepted",
  "refresh.token.invalid": "token_not_accepted",
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
  constructor({
    code,
    service = null,
    status = 0,
    title = null,
    detail = null,
    retryAfterSeconds = null,
    requestId = null,
  }) {
    super(code);
    this.code = code;
    this.service = service;
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfterSeconds = retryAfterSeconds;
    this.requestId = requestId;
  }
}

/** Any error as a Failure: a Failure as it is, anything else as a fault of the page. */
function asFailure(error) {
  return error instanceof Failure ? error : new Failure({ code: "page_error", detail: String(error) });
}

/** The failure in words, from the MESSAGES table, else from the problem's own title and detail. */
function describe(failure, config) {
  const facts = {
    wait: failure.retryAfterSeconds === null ? null : inWords(failure.retryAfterSeconds),
    detail: failure.detail ?? failure.title ?? "no details given",
    origin: window.location.origin,
    service: failure.service ?? config.apiBaseUrl,
  };
  const message = MESSAGES[failure.code];
  if (message) {
    return message(facts);
  }
  const what = [failure.title, failure.detail].filter(Boolean).join(": ");
  return failure.status
    ? `${failure.service ?? "The service"} refused the request (${failure.status}${what ? `, ${what}` : ""}).`
    : `The page failed: ${what || failure.code}.`;
}

/**
 * POSTs JSON to the service at `base`, with the site session as `Authorization: Bearer` when one
 * is given; resolves with the body and request id, or rejects with a Failure.
 */
async function postJson(base, path, body, { bearer = null } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (bearer) {
    headers.Authorization = `Bearer ${bearer}`;
  }
  let response;
  try {
    response = await fetch(base + path, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw await networkFailure(base, `${base}/livez`, "origin_not_allowed", "unreachable");
  }
  const data = await response.json().catch(() => null);
  // Both headers reach this script only because the service exposes them through CORS.
  const requestId = response.headers.get("X-Request-ID") ?? data?.requestId ?? null;
  if (response.ok) {
    return { data, requestId };
  }
  throw new Failure({
    code: data?.code ?? `http_${response.status}`,
    service: base,
    status: response.status,
    title: data?.title ?? response.statusText,
    detail: data?.detail ?? null,
    retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After")),
    requestId,
  });
}

/**
 * Calls one of Genesys' web-messaging token routes, as the Messenger does: no Genesys credential,
 * JSON in and out, the messaging JWT as `Authorization: Bearer` where the route wants it. Resolves
 * with the body (null when there is none), or rejects with a Failure named after Genesys' code.
 */
async function callGenesys(config, method, path, { body = null, bearer = null } = {}) {
  const base = config.genesysBaseUrl;
  const headers = {};
  if (body !== null) {
    headers["Content-Type"] = "application/json";
  }
  if (bearer) {
    headers.Authorization = `Bearer ${bearer}`;
  }
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers,
      body: body === null ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw await networkFailure(base, base + path, "genesys_origin_not_allowed", "genesys_unreachable");
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.ok) {
    return data;
  }
  const code = data?.code ?? null;
  throw new Failure({
    code: GENESYS_CODES[code] ?? `genesys_${response.status}`,
    service: base,
    status: response.status,
    title: code ? `Genesys ${code}` : "Genesys",
    detail: data?.message ?? null,
    retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After")),
    requestId: response.headers.get("inin-correlation-id"),
  });
}

/**
 * Why fetch failed: it only says "TypeError", whether CORS withheld the answer or nothing answered.
 * A no-cors request succeeds whenever the server answers at all, so a server that answers `probe`
 * refused this page's origin (`refused`); one that does not is `unreachable`.
 */
async function networkFailure(service, probe, refused, unreachable) {
  try {
    await fetch(probe, { mode: "no-cors", credentials: "omit", cache: "no-store" });
    return new Failure({ code: refused, service });
  } catch {
    return new Failure({ code: unreachable, service });
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
      const { data, requestId } = await postJson(this.config.apiBaseUrl, GUEST_TOKEN_PATH, {
        queueId: this.config.queueId,
      });
      this.accept(data, requestId, reason);
    } catch (error) {
      this.reject(asFailure(error), reason);
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

/** The first characters of a secret, code or token: enough to tell them apart, never enough to use. */
function prefix(secret) {
  return secret ? `${String(secret).slice(0, 10)}…` : "—";
}

/** The claims of a JWT, read without checking it (Genesys checks it; the page only shows them). */
function jwtClaims(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
  } catch {
    return {};
  }
}

/** A random UUID (version 4): the Messenger's own session token. */
function randomUuid() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The stand-in login's session kept in this tab, or null. */
function storedSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_STORAGE_KEY));
    return session?.sessionToken ? session : null;
  } catch {
    return null;
  }
}

/**
 * The "Signed-in chat (web messaging)" panel: the stand-in login, then a messaging JWT in one of
 * two modes, then an authenticated session on Genesys' WebSocket with a working chat box, and the
 * revocation of that session.
 */
class ChatPanel {
  constructor(config) {
    this.config = config;
    const byId = (id) => document.getElementById(id);
    this.el = {
      loginForm: byId("login-form"),
      loginName: byId("login-name"),
      loginEmail: byId("login-email"),
      loginSubmit: byId("login-submit"),
      loginState: byId("login-state"),
      signOut: byId("login-sign-out"),
      start: byId("chat-start"),
      revoke: byId("chat-revoke"),
      steps: byId("chat-steps"),
      status: byId("chat-status"),
      log: byId("chat-log"),
      chatForm: byId("chat-form"),
      input: byId("chat-input"),
      send: byId("chat-send"),
    };
    this.session = storedSession();
    this.busy = false;
    // The open conversation: its socket, messaging JWT, deployment, the Messenger's session token,
    // whether Genesys accepted the session, and the answer a configure request awaits.
    this.chat = null;

    byId("chat-websocket").textContent = config.webSocketUrl;
    byId("chat-deployment").textContent = config.deploymentId;
    byId("chat-messaging-api").textContent = config.messagingApiBaseUrl;
    this.el.loginForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.signIn();
    });
    this.el.signOut.addEventListener("click", () => this.signOut());
    this.el.start.addEventListener("click", () => this.start());
    this.el.revoke.addEventListener("click", () => this.revoke());
    this.el.chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendText();
    });
    setInterval(() => this.renderLogin(), 1000);
    this.render();
  }

  mode() {
    return document.querySelector('input[name="chat-mode"]:checked')?.value ?? "messenger";
  }

  // ---- The stand-in login ----

  async signIn() {
    if (!this.config.signInAvailable) {
      this.setStatus("error", describe(new Failure({ code: "sign_in_unavailable" }), this.config));
      return;
    }
    this.el.loginSubmit.disabled = true;
    try {
      const response = await fetch(STAND_IN_LOGIN_PATH, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: this.el.loginName.value, email: this.el.loginEmail.value }),
        cache: "no-store",
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        throw new Failure({ code: data?.code ?? `http_${response.status}`, status: response.status, detail: data?.detail });
      }
      this.session = data;
      sessionStorage.setItem(SESSION_STORAGE_KEY, JSON.stringify(data));
      this.setStatus("idle", `Signed in as ${data.name}. Start the chat: the service will vouch for ${data.subject}.`);
    } catch (error) {
      this.setStatus("error", describe(asFailure(error), this.config));
    } finally {
      this.render();
    }
  }

  signOut() {
    sessionStorage.removeItem(SESSION_STORAGE_KEY);
    this.session = null;
    this.disconnect();
    this.setStatus("idle", "Signed out: the site session is forgotten and the chat is closed.");
    this.render();
  }

  // ---- Starting a chat ----

  async start() {
    if (this.busy) {
      return;
    }
    this.busy = true;
    this.disconnect();
    this.el.steps.replaceChildren();
    this.el.log.replaceChildren();
    const mode = this.mode();
    this.setStatus("pending", mode === "messenger" ? "Getting a code for the Messenger…" : "Getting a messaging token from the service…");
    this.render();
    try {
      const grant = mode === "messenger" ? await this.messengerGrant() : await this.customWidgetGrant();
      const who = jwtClaims(grant.jwt).sub ?? "an unknown visitor";
      await this.configure(grant, "session");
      const anonymous = who.startsWith("anonymous-") ? " (a pseudonym: you are not signed in)" : "";
      this.setStatus("ok", `Connected: an authenticated chat as ${who}${anonymous}. Say something to the agent.`);
      this.note(`Chat started as ${who}.`);
    } catch (error) {
      this.fail(asFailure(error));
    } finally {
      this.busy = false;
      this.render();
    }
  }

  /** Messenger mode: the service's code, redeemed by Genesys' exchange, as the stock Messenger does. */
  async messengerGrant() {
    const api = this.config.apiBaseUrl;
    const signedIn = this.session ? "with the site session" : "without a site session";
    this.step("code", "pending", `POST ${api}${AUTH_CODE_PATH} ${signedIn}`);
    const { data: code } = await postJson(api, AUTH_CODE_PATH, {}, { bearer: this.session?.sessionToken });
    this.step("code", "ok", `The service issued the one-time code ${prefix(code.authCode)} (PKCE and nonce bound, for ${code.redirectUri}).`);

    this.step("exchange", "pending", "Genesys' code exchange: Genesys redeems the code at the service's /oidc/token…");
    const exchanged = await callGenesys(this.config, "POST", OAUTH_EXCHANGE_PATH, {
      body: {
        deploymentId: this.config.deploymentId,
        oauth: {
          code: code.authCode,
          redirectUri: code.redirectUri,
          nonce: code.nonce,
          codeVerifier: code.codeVerifier,
        },
      },
    });
    const claims = jwtClaims(exchanged.jwt);
    this.step("exchange", "ok", `Genesys answered the messaging JWT ${prefix(exchanged.jwt)} for ${claims.sub}, valid until ${clock(claims.exp * 1000)}.`);
    return { jwt: exchanged.jwt, webSocketUrl: this.config.webSocketUrl, deploymentId: this.config.deploymentId };
  }

  /** Custom-widget mode: the service (in web-messaging mode) runs the exchange and answers the JWT. */
  async customWidgetGrant() {
    const api = this.config.messagingApiBaseUrl;
    const signedIn = this.session ? "with the site session" : "without a site session";
    this.step("guest-token", "pending", `POST ${api}${GUEST_TOKEN_PATH} ${signedIn}`);
    const { data } = await postJson(api, GUEST_TOKEN_PATH, {}, { bearer: this.session?.sessionToken });
    this.step("guest-token", "ok", `The service answered the messaging JWT ${prefix(data.guestToken)} for guest ${data.guestId}, valid for ${inWords(data.ttlSeconds)}.`);
    return { jwt: data.guestToken, webSocketUrl: data.webSocketUrl, deploymentId: data.deploymentId };
  }

  /**
   * Sends `configureAuthenticatedSession` with the grant's JWT, on the open socket or a new one;
   * resolves when Genesys accepts the session, rejects with a Failure when it refuses. `step`
   * names the line of the steps list that follows it.
   */
  configure(grant, step) {
    return new Promise((resolve, reject) => {
      const awaiting = { resolve, reject, step };
      const request = () => ({
        action: "configureAuthenticatedSession",
        token: this.chat.token,
        deploymentId: grant.deploymentId,
        data: { code: grant.jwt },
      });
      if (this.chat?.socket.readyState === WebSocket.OPEN) {
        this.chat.awaiting = awaiting;
        this.step(step, "pending", "configureAuthenticatedSession again on the WebSocket, with the same messaging JWT…");
        this.chat.socket.send(JSON.stringify(request()));
        return;
      }
      const url = `${grant.webSocketUrl}?deploymentId=${encodeURIComponent(grant.deploymentId)}`;
      this.step(step, "pending", `WebSocket ${grant.webSocketUrl}: configureAuthenticatedSession…`);
      let socket;
      try {
        socket = new WebSocket(url);
      } catch (error) {
        reject(new Failure({ code: "websocket_failed", service: grant.webSocketUrl, detail: String(error) }));
        return;
      }
      const chat = { socket, grant, token: randomUuid(), connected: false, awaiting };
      this.chat = chat;
      socket.addEventListener("open", () => socket.send(JSON.stringify(request())));
      socket.addEventListener("message", (event) => this.onEnvelope(chat, event.data));
      socket.addEventListener("close", (event) => this.onClose(chat, event));
    });
  }

  onEnvelope(chat, text) {
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch {
      return;
    }
    const awaiting = chat.awaiting;
    if (envelope.type === "response" && envelope.class === "SessionResponse") {
      chat.connected = true;
      chat.awaiting = null;
      if (awaiting) {
        this.step(awaiting.step, "ok", "Genesys accepted the authenticated session.");
        awaiting.resolve(envelope.body);
      }
    } else if (envelope.type === "response" && envelope.code === 401) {
      chat.connected = false;
      chat.awaiting = null;
      const failure = new Failure({ code: "session_refused", service: chat.grant.webSocketUrl, status: 401, detail: envelope.body });
      if (awaiting) {
        this.step(awaiting.step, "error", `Genesys refused the session: ${envelope.code} "${envelope.body}".`);
        awaiting.reject(failure);
      } else {
        this.fail(failure);
      }
    } else if (envelope.type === "message" && envelope.body?.direction === "Outbound") {
      this.say("agent", envelope.body.text ?? "");
      this.setStatus("ok", `The agent replied at ${clock(Date.now())}.`);
    } else if (envelope.class === "string") {
      const failure = new Failure({ code: `websocket_${envelope.code}`, service: chat.grant.webSocketUrl, status: envelope.code, title: "Genesys", detail: envelope.body });
      if (awaiting) {
        chat.awaiting = null;
        awaiting.reject(failure);
      } else {
        this.fail(failure);
      }
    }
    this.render();
  }

  onClose(chat, event) {
    if (this.chat !== chat) {
      return; // A conversation this page closed itself.
    }
    const failure = new Failure({
      code: chat.connected ? "websocket_closed" : "websocket_failed",
      service: chat.grant.webSocketUrl,
      detail: `code ${event.code}${event.reason ? `, ${event.reason}` : ""}`,
    });
    this.chat = null;
    if (chat.awaiting) {
      chat.awaiting.reject(failure);
    } else {
      this.fail(failure);
    }
    this.render();
  }

  disconnect() {
    const chat = this.chat;
    this.chat = null;
    if (chat && chat.socket.readyState <= WebSocket.OPEN) {
      chat.socket.close(1000, "closed by the page");
    }
  }

  // ---- Chatting and revoking ----

  sendText() {
    const text = this.el.input.value.trim();
    if (!text || !this.chat?.connected) {
      return;
    }
    this.chat.socket.send(JSON.stringify({ action: "onMessage", token: this.chat.token, message: { type: "Text", text } }));
    this.say("visitor", text);
    this.el.input.value = "";
    this.setStatus("pending", "Sent; waiting for the agent…");
  }

  /**
   * Revokes the session's tokens at Genesys with the messaging JWT, then configures the session
   * again with that JWT, as a Messenger reconnecting would, to show that Genesys now refuses it.
   */
  async revoke() {
    const chat = this.chat;
    if (!chat || this.busy) {
      return;
    }
    this.busy = true;
    this.render();
    try {
      this.step("revoke", "pending", `DELETE Genesys ${REVOKE_PATH} with the messaging JWT ${prefix(chat.grant.jwt)}…`);
      await callGenesys(this.config, "DELETE", REVOKE_PATH, { bearer: chat.grant.jwt });
      this.step("revoke", "ok", "Genesys revoked the session: its messaging JWT and refresh token stop working.");
      chat.connected = false;
      this.setStatus("pending", "Revoked. Configuring the session again with the same messaging JWT…");
      try {
        await this.configure(chat.grant, "reconfigure");
        this.setStatus("error", "Genesys still accepted the session after the revocation: the revocation did not take effect.");
      } catch (error) {
        const failure = asFailure(error);
        if (failure.code !== "session_refused") {
          throw failure;
        }
        this.setStatus(
          "error",
          `Session revoked: Genesys refused to configure it again ("${failure.detail}", ${failure.status}). Start the chat again for a new session.`,
        );
        this.note("The session was revoked.");
      }
    } catch (error) {
      this.fail(asFailure(error));
    } finally {
      this.busy = false;
      this.render();
    }
  }

  // ---- What the panel shows ----

  fail(failure) {
    for (const item of this.el.steps.querySelectorAll('[data-state="pending"]')) {
      item.dataset.state = "error";
    }
    this.setStatus("error", describe(failure, this.config));
  }

  setStatus(state, text) {
    this.el.status.dataset.state = state;
    this.el.status.textContent = text;
  }

  /** Adds or updates the step `name` of what the widget did. */
  step(name, state, text) {
    let item = this.el.steps.querySelector(`[data-step="${name}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.step = name;
      this.el.steps.append(item);
    }
    item.dataset.state = state;
    item.textContent = text;
  }

  /** A message in the conversation, from the visitor or the agent. */
  say(from, text) {
    const item = document.createElement("li");
    item.dataset.from = from;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = from === "agent" ? "Agent" : "You";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(who, body);
    this.el.log.append(item);
    this.el.log.scrollTop = this.el.log.scrollHeight;
  }

  /** A line in the conversation that nobody said. */
  note(text) {
    const item = document.createElement("li");
    item.dataset.from = "system";
    item.textContent = text;
    this.el.log.append(item);
  }

  render() {
    const connected = Boolean(this.chat?.connected);
    this.el.start.disabled = this.busy;
    this.el.revoke.disabled = this.busy || !connected;
    this.el.input.disabled = !connected;
    this.el.send.disabled = !connected;
    this.renderLogin();
  }

  renderLogin() {
    const available = Boolean(this.config.signInAvailable);
    const session = this.session;
    this.el.loginForm.hidden = Boolean(session);
    this.el.signOut.hidden = !session;
    for (const field of [this.el.loginName, this.el.loginEmail, this.el.loginSubmit]) {
      field.disabled = !available;
    }
    const state = this.el.loginState;
    if (!available) {
      state.dataset.state = "unavailable";
      state.textContent = describe(new Failure({ code: "sign_in_unavailable" }), this.config);
    } else if (!session) {
      state.dataset.state = "signed-out";
      state.textContent = "Not signed in.";
    } else {
      const left = session.expiresAt * 1000 - Date.now();
      const expiry = left > 0 ? `expires at ${clock(session.expiresAt * 1000)} (in ${span(left)})` : "expired: sign in again";
      state.dataset.state = left > 0 ? "signed-in" : "expired";
      state.textContent = `Signed in as ${session.name} <${session.email}>, site session ${prefix(session.sessionToken)}, ${expiry}.`;
    }
  }
}

async function main() {
  let config;
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) {
      throw new Error(`it answered ${response.status}`);
    }
    config = await response.json();
  } catch (error) {
    for (const id of ["guest-status", "chat-status"]) {
      const line = document.getElementById(id);
      line.dataset.state = "error";
      line.textContent = `The page cannot read its settings from config.json: ${error.message}`;
    }
    return;
  }
  document.getElementById("page-origin").textContent = window.location.origin;
  document.getElementById("api-base").textContent = config.apiBaseUrl;
  new ChatPanel(config);
  new GuestTokenPanel(config).fetchToken("on page load");
}

main();
