import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/api.js'
import { chineseError } from '../src/lib/messages.js'

describe('API refusals in Chinese, per field', () => {
  it('maps each field of a validation error to a Chinese message for that input', () => {
    const e = chineseError(400, { error: {
      code: 'validation_failed', message: 'some fields are not valid',
      fields: { id_number: "the ID number's check digit is wrong; please check for a typo",
        username: 'a username is 4–32 letters, digits or underscores',
        ethnicity: 'something unexpected' } } })
    expect(e.fields.id_number).toContain('校验码')
    expect(e.fields.username).toBe('用户名为 4–32 位英文字母、数字或下划线。')
    expect(e.fields.ethnicity).toBe('民族填写有误，请检查。')
    expect(e.message).toBe('填写的内容有误，请按提示修改。')
    const err = new ApiError(400, e)
    expect(err.field('username')).toBe(e.fields.username)
    expect(err.field('mobile')).toBe('')
  })

  it('shows nested fields at their input and never English', () => {
    const e = chineseError(400, { error: { code: 'validation_failed', message: 'x',
      fields: { 'education.0.school': 'Missing data for required field.' } } })
    expect(e.fields['education.0.school']).toBe('此项必须填写。')
  })

  it('uses the reason, then a known message, then the code', () => {
    expect(chineseError(401, { error: { code: 'unauthorized', reason: 'locked', message: 'Account locked.' } })
      .message).toContain('锁定')
    expect(chineseError(409, { error: { code: 'refused', message: 'Some rule we never heard of.' } })
      .message).toBe('按照考试规定，此项业务现在不能办理。')
    expect(chineseError(502, null).code).toBe('internal')
    expect(chineseError(0, null).message).toContain('无法连接')
    expect(chineseError(429, { error: { code: 'rate_limited', message: 'Too many attempts.' } })
      .message).toContain('稍后')
  })

  it('keeps a message that is already Chinese', () => {
    expect(chineseError(409, { error: { code: 'refused', message: '网上报名已截止。' } }).message)
      .toBe('网上报名已截止。')
  })
})
