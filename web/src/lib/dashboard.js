// The operator dashboard's pure parts (运维看板): how long figures may stay before they are
// called stale, when a wall screen's token is renewed, countdowns, percentages and the
// charts' scales. The figures themselves come from GET /api/ops/dashboard (the gateway's
// dashboard.py shapes them from the services' own counts); nothing here computes a count.

export const REFRESH_MS = 5000
export const STALE_MS = 2.5 * REFRESH_MS // no fresh figures for this long: say so
export const RENEW_BEFORE_S = 120 // renew at most this long before the token ends...
export const DEFAULT_LIFETIME_S = 900 // ...and at half its life (lifetime not yet known: 15 min)
export const UNAVAILABLE = '不可用 unavailable'

const pad = (n) => String(n).padStart(2, '0')

/** "6天 05:29:30" ("05:29:30" under a day) for a number of seconds; '—' for none. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '—'
  let left = Math.max(0, Math.round(Number(seconds)))
  const days = Math.floor(left / 86400); left -= days * 86400
  const h = Math.floor(left / 3600); left -= h * 3600
  const m = Math.floor(left / 60)
  const clock = `${pad(h)}:${pad(m)}:${pad(left - m * 60)}`
  return days ? `${days}天 ${clock}` : clock
}

/** A conversion as shown: "45.5%", '—' where the API has none (a missing figure, a base of 0). */
export function pct(value) {
  return value === null || value === undefined ? '—' : `${value}%`
}

/** A funnel step's conversions: "of the step before · of the first" ("— · 100%" for the first). */
export function conversion(step) {
  return `${pct(step.rate)} · ${pct(step.of_first)}`
}

/** A bar's length in per cent of the longest (0–100; 0 for none or an empty chart). */
export function barPercent(value, max) {
  if (!(max > 0) || !(value > 0)) return 0
  return Math.min(100, (100 * value) / max)
}

/** Stale figures: none fresh for `staleMs`. {stale, seconds since the last good ones}. */
export function staleness(lastGood, now, staleMs = STALE_MS) {
  if (lastGood === null || lastGood === undefined) return { stale: false, seconds: 0 }
  const age = Math.max(0, now - lastGood)
  return { stale: age > staleMs, seconds: Math.round(age / 1000) }
}

/** Whether a token ending at `expiresAt` (seconds since the epoch, the gateway's clock) and
 * living `lifetime` seconds is due for renewal at `serverNow` (ms, the gateway's clock as
 * this page reckons it): at half its life, at most RENEW_BEFORE_S before it ends. */
export function renewDue(expiresAt, lifetime, serverNow) {
  if (!expiresAt) return false
  const life = lifetime > 0 ? lifetime : DEFAULT_LIFETIME_S
  const left = expiresAt * 1000 - serverNow
  return left <= Math.min(RENEW_BEFORE_S * 1000, (life * 1000) / 2)
}

/** The gateway's clock minus this browser's, ms: from an answer's "now" (ISO) or a token
 * answer (expires_at − expires_in is the gateway's now, in whole seconds). */
export function serverOffset(answer, browserNow = Date.now()) {
  if (answer?.now) {
    const t = Date.parse(answer.now)
    return Number.isNaN(t) ? 0 : t - browserNow
  }
  if (answer?.expires_at && answer?.expires_in) {
    return (answer.expires_at - answer.expires_in) * 1000 - browserNow
  }
  return 0
}

export const WINDOW_STATES = { open: '进行中 open', upcoming: '未开始 upcoming', closed: '已截止 closed' }

/** A window's moments on this browser's clock, from an answer received at `receivedAt`. */
export function windowTimes(w, receivedAt) {
  return {
    closesAt: w.closes_in === null || w.closes_in === undefined ? null : receivedAt + w.closes_in * 1000,
    opensAt: w.opens_in === null || w.opens_in === undefined ? null : receivedAt + w.opens_in * 1000,
  }
}

/** A window's countdown at `now`: "6天 05:29:30 后截止 to close" / "… 后开始 to open" / '—'. */
export function windowCountdown(times, now) {
  if (times.closesAt !== null) return `${duration((times.closesAt - now) / 1000)} 后截止 to close`
  if (times.opensAt !== null) return `${duration((times.opensAt - now) / 1000)} 后开始 to open`
  return '—'
}

/** The axis' top for a peak: the smallest 1, 2 or 5 × 10ⁿ at or above it (at least 1). */
export function niceCeiling(peak) {
  if (!(peak > 1)) return 1
  const power = 10 ** Math.floor(Math.log10(peak))
  for (const step of [1, 2, 5, 10]) if (step * power >= peak) return step * power
  return 10 * power
}

/** Gridlines for an axis up to `top`: 0, and up to `count` even steps of whole numbers. */
export function ticks(top, count = 4) {
  const step = Math.max(1, Math.ceil(top / count))
  const out = []
  for (let v = 0; v <= top; v += step) out.push(v)
  return out
}

/**
 * The arrivals chart (每小时到达) laid out in pixels: for each hour a group of bars, one per
 * series, scaled to the axis' top (niceCeiling of the busiest hour); hour labels thinned so
 * they do not overlap. `arrivals` is the API's; {width, height, font} the drawing's size.
 */
export function arrivalsLayout(arrivals, { width, height, font = 12 }) {
  const hours = arrivals?.hours || []
  const series = arrivals?.series || []
  const left = Math.ceil(font * 3.2)
  const bottom = Math.ceil(font * 1.9)
  const top = Math.ceil(font * 0.8)
  const plotWidth = Math.max(1, width - left - 4)
  const plotHeight = Math.max(1, height - top - bottom)
  const axisTop = niceCeiling(arrivals?.peak || 0)
  const base = top + plotHeight
  const slot = plotWidth / Math.max(1, hours.length)
  const barWidth = Math.max(0.5, (slot * 0.8) / Math.max(1, series.length))
  const bars = []
  const labels = []
  const labelWidth = font * 6.5 // "04-07 10:00"
  const every = Math.max(1, Math.ceil(labelWidth / slot))
  hours.forEach((h, i) => {
    const x0 = left + i * slot + slot * 0.1
    series.forEach((s, j) => {
      const value = h[s.key]
      if (value === null || value === undefined) return
      const barHeight = (plotHeight * value) / axisTop
      bars.push({ key: `${h.hour}|${s.key}`, hour: h.hour, series: s.key, value,
        x: x0 + j * barWidth, y: base - barHeight, width: barWidth, height: barHeight,
        title: `${h.label} ${s.label}: ${value}` })
    })
    if (i % every === 0) labels.push({ key: h.hour, x: left + i * slot, text: h.label })
  })
  const grid = ticks(axisTop).map((v) => ({ value: v, y: base - (plotHeight * v) / axisTop }))
  return { width, height, left, base, top, right: left + plotWidth, bars, labels, grid, axisTop }
}

/** The arrivals' range under the chart: "04-07 10:00 – 04-08 09:00 · 此前 before: 注册 registrations 3". */
export function arrivalsRange(arrivals) {
  const hours = arrivals?.hours || []
  if (!hours.length) return '—'
  const earlier = (arrivals.series || []).filter((s) => arrivals.earlier?.[s.key])
    .map((s) => `${s.label} ${arrivals.earlier[s.key]}`).join(', ')
  return `${hours[0].label} – ${hours[hours.length - 1].label}` + (earlier ? ` · 此前 before: ${earlier}` : '')
}

// the services' count keys (English, as operators read them in `kaowu`) with Chinese beside
const COUNT_LABELS = {
  submitted: '已提交', proof_requested: '待补材料', proof_submitted: '材料已提交',
  manual_rejected: '人工核查不通过', passed: '核查通过', confirmed: '已确认', terminated: '已终止',
  voided: '已作废', withdrawn: '已撤回', auto_check: '自动核查中', awaiting_proof: '等待材料',
  awaiting_manual: '等待人工核查', spot_check: '抽查复核', open: '待答复', answered: '已答复',
  closed: '已关闭', seats_allocated: '已分配考位', tickets_issued: '已发准考证', printed: '已打印',
  forfeited: '已放弃', checked_in: '已签到', absent: '缺考', cancelled: '已取消',
  awaiting_seat: '等待考位', unseated: '未安排考位', imported_rows: '导入行数', published: '已发布',
  candidates: '考生', passed_subjects: '通过科目', qualified: '合格', issued: '已发证书', downloaded: '已下载',
  collected: '已领取', revoked: '已撤销', queued: '排队中', sent: '已发送', failed: '发送失败',
  in_site: '站内信', accounts: '账号', complete_profiles: '信息完整', incomplete_profiles: '信息不完整',
  auto_passed: '自动核查通过', auto_failed: '自动核查不通过', commitment_withdrawn: '已撤回承诺',
  manual_passed: '人工核查通过', spot_passed: '抽查通过', spot_rejected: '抽查不通过', eligible: '资格核查通过',
  lapsed: '逾期未确认',
}

/** A section's counts as rows {key, label, value} (nested objects and the session's id left
 * out), by key. */
export function countRows(counts) {
  return Object.keys(counts || {})
    .filter((k) => k !== 'session_id' && (counts[k] === null || typeof counts[k] !== 'object'))
    .sort().map((key) => {
      const v = counts[key]
      const value = typeof v === 'boolean' ? (v ? '是 yes' : '否 no') : v
      return { key, label: COUNT_LABELS[key] ? `${COUNT_LABELS[key]} ${key}` : key, value }
    })
}

// A wall screen has no one to scroll it: what lies below the first screen (the counts, the
// services) comes into view by itself, a screen at a time, then back to the top.
export const WALL_PAGE_MS = 15000 // how long each screenful stays
export const WALL_OVERLAP = 0.1 // of a screen kept from the last, so a row cut at the edge is seen whole

/** The scroll offsets (px) a wall screen shows in turn: the top, a screen further each
 * time, the last one ending at the bottom; only the top when everything fits. */
export function wallStops(contentHeight, viewportHeight, overlap = WALL_OVERLAP) {
  const bottom = Math.max(0, Math.round(contentHeight - viewportHeight))
  if (bottom <= 2 || viewportHeight <= 0) return [0]
  const step = Math.max(1, Math.floor(viewportHeight * (1 - overlap)))
  const stops = []
  for (let y = 0; y < bottom; y += step) stops.push(y)
  stops.push(bottom)
  return stops
}

/** Where to scroll next from ``current``: the first stop below it, or the top after the last
 * (from the page's present position, so a page that grew or shrank meanwhile still pages right). */
export function nextWallStop(stops, current) {
  return stops.find((y) => y > current + 1) ?? 0
}
