// The one way the site talks to the gateway's /api: JSON in and out, the bearer token of
// this tab (sessionStorage: gone when the tab closes, never readable by another origin,
// no cookie so no CSRF), and every refusal turned into an ApiError whose `fields` (per
// input) and `message` are Chinese (lib/messages.js). A 401 on a signed-in call means the
// sign-in ended: the session is dropped and the sign-in page shown.

import { chineseError } from './lib/messages.js'

const SESSION_KEY = 'kaowu.session'

export class ApiError extends Error {
  constructor(status, info) {
    super(info.message)
    this.name = 'ApiError'
    this.status = status
    this.code = info.code
    this.reason = info.reason
    this.fields = info.fields || {}
    this.details = info.details || {} // what the refusal is about (window, status...)
    this.english = info.english || '' // for the console only; never shown
  }

  /** The message for one field, or '' (for `<el-form-item :error>`). */
  field(name) {
    return this.fields[name] || ''
  }
}

/** The stored sign-in: {token, expires_at, account} or null. */
export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null')
    } catch {
      return null
    }
  },
  set(value) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value))
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY)
  },
}

let unauthorizedHandler = () => {}
/** Called (with the ApiError) when a signed-in call answers 401. */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn
}

function withQuery(path, query) {
  if (!query) return path
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v)
  const s = q.toString()
  return s ? `${path}?${s}` : path
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra }
  const token = session.get()?.token
  if (token) h.Authorization = `Bearer ${token}`
  return h
}

async function failure(response) {
  let body = null
  try {
    body = await response.json()
  } catch {
    body = null
  }
  return refusal(response.status, body)
}

function refusal(status, body) {
  const error = new ApiError(status, chineseError(status, body))
  // the gateway's own error as it came (English), for screens that lay out its details
  // themselves: a score file's row-by-row report, a point's service hours
  error.raw = (body && typeof body === 'object' && body.error) || {}
  if (status === 401 && session.get()?.token) {
    session.clear()
    unauthorizedHandler(error)
  }
  return error
}

// Renewal (POST /api/token/renew): a tab in use keeps its sign-in. Tokens live 15 minutes;
// a call made in the last two minutes of one first renews it (once, shared by the calls
// then in flight). An idle tab is not renewed: its sign-in ends with the token.
const RENEW_BEFORE = 120 // seconds before expiry
let renewing = null
let renewedHandler = () => {}
/** Called with the renewal's answer (the same shape as the sign-in's). */
export function onRenewed(fn) {
  renewedHandler = fn
}

/** When to renew a token that lives `expiresIn` seconds from now (ms since the epoch, this
 * browser's clock: the gateway's may differ, only the span is used). */
export function renewAt(expiresIn, now = Date.now()) {
  return now + Math.max(expiresIn - RENEW_BEFORE, 30) * 1000
}

/** Trade this tab's token for a fresh one now (POST /api/token/renew; one renewal at a
 * time, shared by its callers): resolves with the gateway's answer, rejects with an
 * ApiError (a 401 has then already ended the sign-in). Pages that stay open and make no
 * calls of their own in time (the dashboard on a wall screen) renew on their own schedule. */
export function renew() {
  renewing ||= (async () => {
    try {
      const answer = await request('POST', '/api/token/renew')
      const value = { ...session.get(), token: answer.token, expires_at: answer.expires_at,
        renew_at: renewAt(answer.expires_in) }
      session.set(value)
      renewedHandler(value)
      return answer
    } finally {
      renewing = null
    }
  })()
  return renewing
}

async function renewIfDue(path) {
  const s = session.get()
  if (!s?.token || !s.renew_at || Date.now() < s.renew_at || path === '/api/token/renew') return
  try {
    await renew()
  } catch {
    // a refused renewal (401) has already ended the session; anything else: try later
  }
}

/** Call the API: resolves with the JSON answer (or null), rejects with an ApiError. */
export async function request(method, path, { body, query, raw = false } = {}) {
  await renewIfDue(path)
  const init = { method, headers: headers(), credentials: 'same-origin' }
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  let response
  try {
    response = await fetch(withQuery(path, query), init)
  } catch {
    throw new ApiError(0, chineseError(0, null))
  }
  if (!response.ok) throw await failure(response)
  if (raw) return response
  const text = await response.text()
  return text ? JSON.parse(text) : null
}

export const get = (path, options) => request('GET', path, options)
export const post = (path, body, options) => request('POST', path, { ...options, body })
export const put = (path, body, options) => request('PUT', path, { ...options, body })

/**
 * Upload files as multipart/form-data (field `field`), reporting progress (0–100) as the
 * bytes go: fetch cannot tell upload progress, XMLHttpRequest can.
 */
export function upload(method, path, field, files, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const form = new FormData()
    for (const f of files) form.append(field, f, f.name)
    const xhr = new XMLHttpRequest()
    xhr.open(method, path)
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v)
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(Math.round((e.loaded / e.total) * 100))
    }
    xhr.onerror = () => reject(new ApiError(0, chineseError(0, null)))
    xhr.onload = () => {
      let body = null
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null
      } catch {
        body = null
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(100)
        resolve(body)
      } else {
        reject(refusal(xhr.status, body))
      }
    }
    xhr.send(form)
  })
}

/** The file name a Content-Disposition names (RFC 5987 filename* first). */
export function dispositionName(header, fallback) {
  if (!header) return fallback
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header)
  if (star) return decodeURIComponent(star[1])
  const plain = /filename="?([^";]+)"?/i.exec(header)
  return plain ? plain[1] : fallback
}

/** Fetch a document with the token and hand it to the browser as a download. */
export async function download(path, fallbackName) {
  const response = await request('GET', path, { raw: true })
  const blob = await response.blob()
  const name = dispositionName(response.headers.get('Content-Disposition'), fallbackName)
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
  return name
}
