// Who is signed in, in this tab: the token and the account the gateway answered at sign-in
// (role, name, username; a staff member's registration point). Kept in sessionStorage by
// api.js; `auth.state` is reactive so the layout and menus follow it.

import { reactive } from 'vue'
import { onRenewed, post, renewAt, session } from './api.js'

export const ROLES = ['candidate', 'staff', 'authority', 'operator']
export const ROLE_NAMES = {
  candidate: '考生', staff: '报名点工作人员', authority: '考试机构', operator: '运维人员',
}
const REMEMBERED = 'kaowu.username'

export const state = reactive({ session: session.get() })

// Not judged by the browser's clock (it may be wrong): an ended sign-in answers 401.
export function signedIn() {
  const s = state.session
  return Boolean(s && s.token)
}

export function role() {
  return signedIn() ? state.session.account.role : null
}

export function account() {
  return signedIn() ? state.session.account : null
}

/** Sign in (POST /api/login); resolves with the account. Rejects with an ApiError. */
export async function signIn(username, password) {
  const answer = await post('/api/login', { username, password })
  const value = { token: answer.token, expires_at: answer.expires_at, account: answer.account,
    renew_at: renewAt(answer.expires_in) }
  session.set(value)
  state.session = value
  return answer.account
}

/** Forget this tab's sign-in (the token simply expires at the gateway). */
export function signOut() {
  session.clear()
  state.session = null
}

/** A session dropped by api.js (401): follow it. */
export function forget() {
  state.session = null
}

// a renewed token (api.js renews a tab in use before its token expires)
onRenewed((value) => {
  state.session = value
})

// "记住用户名": the username only, in this browser's localStorage. The password is left to
// the browser's own password manager (autocomplete="current-password"): a site must not
// keep a password where page scripts can read it.
export const remembered = {
  get: () => localStorage.getItem(REMEMBERED) || '',
  set: (username) => localStorage.setItem(REMEMBERED, username),
  clear: () => localStorage.removeItem(REMEMBERED),
}
