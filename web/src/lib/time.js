// Times as people in the exam read them: Asia/Shanghai, to the second, whatever the
// browser's own time zone. The API sends ISO 8601 with an offset (or UTC "Z").

const ZONE = 'Asia/Shanghai'

const PARTS = new Intl.DateTimeFormat('zh-CN', {
  timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
})

function parts(value) {
  const date = value instanceof Date ? value : new Date(value)
  if (Number.isNaN(date.getTime())) return null
  const out = {}
  for (const p of PARTS.formatToParts(date)) out[p.type] = p.value
  return out
}

/** "2026-04-13 16:00:00" (北京时间), or '' for nothing / not a time. */
export function shanghaiTime(value) {
  if (value === null || value === undefined || value === '') return ''
  const p = parts(value)
  if (!p) return String(value)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`
}

/** "2026年4月13日" in Asia/Shanghai. */
export function shanghaiDate(value) {
  const p = value ? parts(value) : null
  if (!p) return value ? String(value) : ''
  return `${Number(p.year)}年${Number(p.month)}月${Number(p.day)}日`
}

/** How long until `to` from `from`, in Chinese: "5天3小时2分10秒"; '' once passed. */
export function countdown(to, from = new Date()) {
  const ms = new Date(to).getTime() - new Date(from).getTime()
  if (!(ms > 0)) return ''
  let s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86400); s -= d * 86400
  const h = Math.floor(s / 3600); s -= h * 3600
  const m = Math.floor(s / 60); s -= m * 60
  return (d ? `${d}天` : '') + (d || h ? `${h}小时` : '') + (d || h || m ? `${m}分` : '') + `${s}秒`
}
