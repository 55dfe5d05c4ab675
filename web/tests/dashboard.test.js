import { describe, expect, it } from 'vitest'
import {
  STALE_MS, arrivalsLayout, arrivalsRange, barPercent, conversion, countRows, duration,
  niceCeiling, pct, renewDue, serverOffset, staleness, ticks, wallStops, nextWallStop, windowCountdown, windowTimes,
} from '../src/lib/dashboard.js'

describe('the dashboard: conversions', () => {
  it('shows the API\'s percentages, a dash where it has none', () => {
    expect(pct(45.5)).toBe('45.5%')
    expect(pct(0)).toBe('0%')
    expect(pct(null)).toBe('—')
    expect(conversion({ rate: null, of_first: 100 })).toBe('— · 100%')
    expect(conversion({ rate: 50, of_first: 25 })).toBe('50% · 25%')
  })

  it('scales bars to the longest, within 0–100', () => {
    expect(barPercent(5, 10)).toBe(50)
    expect(barPercent(10, 10)).toBe(100)
    expect(barPercent(0, 0)).toBe(0)
    expect(barPercent(null, 10)).toBe(0)
    expect(barPercent(12, 10)).toBe(100)
  })
})

describe('the dashboard: staleness and renewal', () => {
  it('calls figures stale after two refreshes and a half, and fresh again at once', () => {
    expect(staleness(null, 1e6)).toEqual({ stale: false, seconds: 0 })
    expect(staleness(1000, 1000 + STALE_MS)).toEqual({ stale: false, seconds: 13 })
    expect(staleness(1000, 1000 + STALE_MS + 1).stale).toBe(true)
    expect(staleness(1000, 31000)).toEqual({ stale: true, seconds: 30 })
    expect(staleness(31000, 31000).stale).toBe(false) // fresh figures came
  })

  it('renews at half the token\'s life, at most two minutes before its end', () => {
    const end = 1_000_000 // seconds since the epoch
    expect(renewDue(end, 900, (end - 121) * 1000)).toBe(false)
    expect(renewDue(end, 900, (end - 120) * 1000)).toBe(true)
    expect(renewDue(end, 6, (end - 4) * 1000)).toBe(false)
    expect(renewDue(end, 6, (end - 3) * 1000)).toBe(true)
    expect(renewDue(end, null, (end - 100) * 1000)).toBe(true) // not known: 15 minutes
    expect(renewDue(end, 900, (end + 5) * 1000)).toBe(true) // already over: try (a 401 ends it)
    expect(renewDue(null, 900, 0)).toBe(false)
  })

  it('reckons the gateway\'s clock from its answers', () => {
    const browser = Date.parse('2026-04-07T02:00:00Z')
    expect(serverOffset({ now: '2026-04-07T10:30:00+08:00' }, browser)).toBe(30 * 60 * 1000)
    expect(serverOffset({ expires_at: 1000, expires_in: 900 }, 50_000)).toBe(50_000)
    expect(serverOffset({}, 5)).toBe(0)
  })
})

describe('the dashboard: countdowns', () => {
  it('formats a span to the second, days apart', () => {
    expect(duration(6 * 86400 + 5 * 3600 + 29 * 60 + 30)).toBe('6天 05:29:30')
    expect(duration(59)).toBe('00:00:59')
    expect(duration(3600.4)).toBe('01:00:00')
    expect(duration(-5)).toBe('00:00:00')
    expect(duration(null)).toBe('—')
  })

  it('counts down to a window\'s close (or its opening) from when the figures came', () => {
    const received = 1_000_000
    const open = windowTimes({ closes_in: 3600, opens_in: null }, received)
    expect(windowCountdown(open, received + 1000)).toBe('00:59:59 后截止 to close')
    expect(windowCountdown(open, received + 4000_000)).toBe('00:00:00 后截止 to close')
    const upcoming = windowTimes({ closes_in: null, opens_in: 86400 }, received)
    expect(windowCountdown(upcoming, received)).toBe('1天 00:00:00 后开始 to open')
    expect(windowCountdown(windowTimes({ closes_in: null, opens_in: null }, received), received)).toBe('—')
  })
})

describe('the dashboard: the arrivals chart', () => {
  const series = [
    { key: 'registrations', label: '注册 registrations', available: true },
    { key: 'applications', label: '报名 applications', available: true },
    { key: 'confirmations', label: '核对确认 confirmations', available: false },
  ]
  const hour = (i, r, a) => ({ hour: `2026-04-07T${10 + i}:00:00+08:00`, label: `04-07 ${10 + i}:00`,
    registrations: r, applications: a, confirmations: null })
  const arrivals = { series, hours: [hour(0, 2, 1), hour(1, 7, 0)], peak: 7,
    totals: { registrations: 9, applications: 1, confirmations: null },
    earlier: { registrations: 3, applications: 0, confirmations: null } }

  it('rounds the axis up to 1, 2 or 5 × 10ⁿ', () => {
    expect([0, 1, 2, 3, 7, 10, 11, 45, 180, 1000].map(niceCeiling))
      .toEqual([1, 1, 2, 5, 10, 10, 20, 50, 200, 1000])
    expect(ticks(10)).toEqual([0, 3, 6, 9])
    expect(ticks(1)).toEqual([0, 1])
    expect(ticks(200)).toEqual([0, 50, 100, 150, 200])
  })

  it('draws each figure as a bar in proportion, leaving out a series that did not answer', () => {
    const layout = arrivalsLayout(arrivals, { width: 600, height: 200, font: 10 })
    expect(layout.axisTop).toBe(10)
    const bar = (h, s) => layout.bars.find((b) => b.hour === arrivals.hours[h].hour && b.series === s)
    expect(layout.bars).toHaveLength(4) // confirmations: unavailable
    const plot = layout.base - layout.top
    expect(bar(1, 'registrations').height).toBeCloseTo(0.7 * plot)
    expect(bar(0, 'registrations').height).toBe(2 * bar(0, 'applications').height)
    expect(bar(1, 'applications').height).toBe(0)
    expect(bar(0, 'registrations').y + bar(0, 'registrations').height).toBeCloseTo(layout.base)
    expect(bar(1, 'registrations').x).toBeGreaterThan(bar(0, 'applications').x)
    expect(bar(0, 'registrations').title).toBe('04-07 10:00 注册 registrations: 2')
    for (const b of layout.bars) expect(b.x + b.width).toBeLessThanOrEqual(layout.right)
    expect(layout.grid.map((g) => g.value)).toEqual([0, 3, 6, 9])
  })

  it('thins the hour labels so they do not overlap', () => {
    const many = { ...arrivals, hours: Array.from({ length: 48 }, (_, i) => ({
      ...hour(0, i, 0), hour: `h${i}`, label: `L${i}` })), peak: 47 }
    const narrow = arrivalsLayout(many, { width: 360, height: 160, font: 12 })
    const wide = arrivalsLayout(many, { width: 1800, height: 300, font: 12 })
    expect(narrow.labels.length).toBeLessThan(wide.labels.length)
    for (const layout of [narrow, wide]) {
      const xs = layout.labels.map((l) => l.x)
      for (let i = 1; i < xs.length; i++) expect(xs[i] - xs[i - 1]).toBeGreaterThanOrEqual(12 * 6.5)
    }
  })

  it('says the range shown and what came before it', () => {
    expect(arrivalsRange(arrivals)).toBe('04-07 10:00 – 04-07 11:00 · 此前 before: 注册 registrations 3')
    expect(arrivalsRange({ ...arrivals, hours: [] })).toBe('—')
  })
})

describe('the dashboard: counts', () => {
  it('lists a section\'s counts by key with Chinese beside, nested ones left out', () => {
    expect(countRows({ proof_submitted: 1, confirmed: 2, staff: { operator: 1 }, published: false, odd: 3,
      session_id: '2026-shanghai' }))
      .toEqual([
        { key: 'confirmed', label: '已确认 confirmed', value: 2 },
        { key: 'odd', label: 'odd', value: 3 },
        { key: 'proof_submitted', label: '材料已提交 proof_submitted', value: 1 },
        { key: 'published', label: '已发布 published', value: '否 no' },
      ].sort((a, b) => a.key.localeCompare(b.key)))
  })
})

describe('the dashboard on a wall: pages below the first screen come into view by themselves', () => {
  it('stays at the top when everything fits', () => {
    expect(wallStops(1000, 1080)).toEqual([0])
    expect(wallStops(1081, 1080)).toEqual([0])
    expect(nextWallStop([0], 0)).toBe(0)
  })

  it('pages a screen at a time (keeping a tenth of the last), the last page ending at the bottom', () => {
    expect(wallStops(2500, 1000)).toEqual([0, 900, 1500])
    expect(wallStops(1900, 1000)).toEqual([0, 900])
  })

  it('goes on from where the page is, then back to the top', () => {
    const stops = [0, 900, 1500]
    expect(nextWallStop(stops, 0)).toBe(900)
    expect(nextWallStop(stops, 900)).toBe(1500)
    expect(nextWallStop(stops, 1500)).toBe(0)
    expect(nextWallStop(stops, 400)).toBe(900) // someone scrolled by hand
    expect(nextWallStop(stops, 3000)).toBe(0) // the page shrank below where it was
  })
})

describe('the dashboard\'s counts: every application status has its Chinese', () => {
  // registration's statuses (services/registration/domain.py STATUS_LABELS)
  const STATUSES = ['submitted', 'auto_passed', 'auto_failed', 'commitment_withdrawn', 'proof_requested',
    'proof_submitted', 'manual_passed', 'manual_rejected', 'spot_check', 'spot_passed', 'spot_rejected',
    'eligible', 'confirmed', 'lapsed', 'terminated', 'voided']
  it.each(STATUSES)('%s', (status) => {
    const [row] = countRows({ [status]: 1 })
    expect(row.label).toMatch(new RegExp(`^[\\u4e00-\\u9fff]+ ${status}$`))
  })
})
