// The password rule (the account service's Password field): 8–64 characters, at least one
// letter and one digit, not the same as the username. Shown as a checklist while typing,
// so the rule is seen before it is broken.

export const PASSWORD_RULES = [
  { key: 'length', text: '8–64 个字符', test: (p) => p.length >= 8 && p.length <= 64 },
  { key: 'letter', text: '至少一个字母', test: (p) => /\p{L}/u.test(p) },
  { key: 'digit', text: '至少一个数字', test: (p) => /\p{Nd}/u.test(p) },
  {
    key: 'username', text: '不能与用户名相同',
    test: (p, username) => !username || p.toLowerCase() !== String(username).toLowerCase(),
  },
]

/** Each rule with whether the password meets it: [{key, text, ok}]. */
export function passwordChecklist(password, username = '') {
  const p = String(password ?? '')
  return PASSWORD_RULES.map((r) => ({ key: r.key, text: r.text, ok: r.test(p, username) }))
}

/** The first rule broken, in Chinese; null when the password may be used. */
export function explainPassword(password, username = '') {
  if (!password) return '请设置密码。'
  const broken = passwordChecklist(password, username).find((r) => !r.ok)
  return broken ? `密码要求：${broken.text}。` : null
}

/** 4–32 letters, digits or underscores (the account service's Username). */
export function explainUsername(username) {
  const u = String(username ?? '').trim()
  if (!u) return '请填写用户名。'
  if (!/^[A-Za-z0-9_]{4,32}$/.test(u)) return '用户名为 4–32 位英文字母、数字或下划线。'
  return null
}

/** 11-digit mainland mobile number starting 13–19. */
export function explainMobile(mobile) {
  const m = String(mobile ?? '').normalize('NFKC').replace(/[\s-]/g, '')
  if (!m) return '请填写手机号码。'
  if (!/^1[3-9]\d{9}$/.test(m)) return '手机号码为 11 位数字，以 13–19 开头。'
  return null
}
