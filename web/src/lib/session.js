// The exam session the candidate's pages are about. Most seasons have one; with several the
// latest year's is shown (a candidate applies once per session). `now` is the gateway's
// clock (GET /api/sessions/{id} answers it), so windows are judged by the server's time.

import { reactive } from 'vue'
import { get } from '../api.js'

export const current = reactive({ session: null, loaded: false, error: null })

/** The session (reloaded each call: its phase and `now` move on). */
export async function loadSession() {
  try {
    const list = await get('/api/sessions')
    if (!list.length) {
      Object.assign(current, { session: null, loaded: true, error: null })
      return null
    }
    const pick = [...list].sort((a, b) => (b.exam_year - a.exam_year) || String(b.session_id).localeCompare(a.session_id))[0]
    const session = await get(`/api/sessions/${encodeURIComponent(pick.session_id)}`)
    Object.assign(current, { session, loaded: true, error: null })
    return session
  } catch (err) {
    Object.assign(current, { loaded: true, error: err })
    throw err
  }
}

/** Whether a window of the session is open at the session's `now` (ends inclusive to the second). */
export function windowState(session, name) {
  const w = session?.windows?.[name]
  if (!w) return 'unknown'
  const now = new Date(session.now).getTime()
  const start = new Date(w.start).getTime()
  const end = new Date(w.end).getTime() + 999
  if (now < start) return 'before'
  if (now > end) return 'after'
  return 'open'
}

export function levelName(session, code) {
  return session?.levels?.[code]?.name || code
}

/** Subject code -> name (from the session's subjects). */
export function subjectName(session, code) {
  return session?.subjects?.[code]?.name || code
}

export const EXEMPTION_GROUNDS = {
  senior_title: '具有高级工程师或自然科学研究系列高级职称',
  verifier_certificate: '持有原计量检定员证',
}
