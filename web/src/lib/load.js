// Loads the candidate pages share: the session, their profile and their application.
import { get } from '../api.js'
import { loadSession } from './session.js'

/** The candidate's application in a session, or null when there is none (404). */
export async function myApplication(sessionId) {
  try {
    return await get(`/api/me/applications/${encodeURIComponent(sessionId)}`)
  } catch (err) {
    if (err.status === 404) return null
    throw err
  }
}

/** {session, application} for the candidate's pages (session null: none scheduled). */
export async function sessionAndApplication() {
  const session = await loadSession()
  const application = session ? await myApplication(session.session_id) : null
  return { session, application }
}
