import { describe, expect, it } from 'vitest'
import { explainMobile, explainPassword, explainUsername, passwordChecklist } from '../src/lib/password.js'

describe('the password rule (as the account service checks it)', () => {
  it('lists every rule with whether it is met', () => {
    const list = passwordChecklist('abc', 'wang_2026')
    expect(list.map((r) => [r.key, r.ok])).toEqual([
      ['length', false], ['letter', true], ['digit', false], ['username', true]])
  })

  it('accepts 8-64 characters with a letter and a digit', () => {
    expect(explainPassword('pass2026word', 'wang_2026')).toBeNull()
    expect(explainPassword('密码密码密码12')).toBeNull() // any script's letters count
  })

  it('names the first rule broken', () => {
    expect(explainPassword('short1')).toBe('密码要求：8–64 个字符。')
    expect(explainPassword('12345678')).toBe('密码要求：至少一个字母。')
    expect(explainPassword('abcdefgh')).toBe('密码要求：至少一个数字。')
    expect(explainPassword('Wang_2026', 'wang_2026')).toBe('密码要求：不能与用户名相同。')
    expect(explainPassword('a1'.repeat(33))).toBe('密码要求：8–64 个字符。')
    expect(explainPassword('')).toBe('请设置密码。')
  })

  it('checks usernames and mobiles', () => {
    expect(explainUsername('wang_2026')).toBeNull()
    expect(explainUsername('王')).toContain('4–32')
    expect(explainMobile('139 0000 0001')).toBeNull()
    expect(explainMobile('12900000001')).toContain('11 位')
  })
})
