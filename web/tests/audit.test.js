import { describe, expect, it } from 'vitest'
import { WHAT, WHY, zh } from '../src/views/authority/audit.js'

describe('the audit trail in Chinese', () => {
  it('names an amended window in Chinese, its times in Beijing time', () => {
    expect(zh(WHAT, 'application window moved to 2026-04-07T02:00:00+00:00 – 2026-04-14T08:00:00+00:00'))
      .toBe('网上报名时段改为 2026-04-07 10:00:00 至 2026-04-14 16:00:00')
  })

  it('reads the standard sentences; people\'s own words stay as written', () => {
    expect(zh(WHAT, 'viewed proof file 工作证明.pdf (3f9a0c1b2d4e)')).toBe('查看证明材料：工作证明.pdf')
    expect(zh(WHY, 'staff of registration point 2916')).toBe('报名点 2916 工作人员')
    expect(zh(WHY, '工作证明未加盖公章')).toBe('工作证明未加盖公章')
  })
})
