import { describe, expect, it } from 'vitest'
import { countdown, shanghaiDate, shanghaiTime } from '../src/lib/time.js'

describe('times in Asia/Shanghai', () => {
  it('shows any offset as Beijing time, to the second', () => {
    expect(shanghaiTime('2026-04-13T16:00:00+08:00')).toBe('2026-04-13 16:00:00')
    expect(shanghaiTime('2026-04-13T08:00:00Z')).toBe('2026-04-13 16:00:00')
    expect(shanghaiTime('2026-04-13T23:59:59.123456+00:00')).toBe('2026-04-14 07:59:59')
    expect(shanghaiTime('2026-12-31T16:00:00Z')).toBe('2027-01-01 00:00:00')
  })

  it('leaves nothing empty and odd text as it is', () => {
    expect(shanghaiTime(null)).toBe('')
    expect(shanghaiTime('')).toBe('')
    expect(shanghaiTime('not a time')).toBe('not a time')
  })

  it('gives dates in Chinese', () => {
    expect(shanghaiDate('2026-06-12T16:30:00Z')).toBe('2026年6月13日')
  })

  it('counts down to the second', () => {
    const from = '2026-04-07T10:30:00+08:00'
    expect(countdown('2026-04-13T16:00:00+08:00', from)).toBe('6天5小时30分0秒')
    expect(countdown('2026-04-07T10:30:59+08:00', from)).toBe('59秒')
    expect(countdown(from, from)).toBe('')
  })
})
