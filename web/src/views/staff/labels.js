// Words the staff and authority screens share: case states, why proof was asked for, how
// long something has waited, a point's service hours and an eligibility rule, in Chinese.
// (The services answer in English for operators; people at the counters read Chinese.)

export const CASE_STATUS = {
  auto_check: '自动核查中',
  awaiting_proof: '等待考生提交证明材料',
  awaiting_manual: '等待人工核查',
  manual_rejected: '人工核查不通过（可补交材料）',
  passed: '核查通过',
  spot_check: '抽查复核中',
  confirmed: '资格核查通过',
  terminated: '报名终止',
  voided: '报名无效',
}

export const PROOF_CAUSE = {
  no_commitment: '未选择告知承诺制，须人工核查证明材料',
  auto_check_failed: '自动核查未通过',
  exemption_claimed: '申请免试科目，须核查证明材料',
  commitment_withdrawn: '考生撤回了承诺',
  spot_check_rejected: '抽查复核不通过，须重新核查',
  enquiry_reopened: '疑问核实后重新核查',
}

export const LEVELS = { L1: '一级', L2: '二级' }

const EDUCATION = { science_engineering: '理工类专业', other: '其他专业', any: '不限专业' }

/** "2小时5分" for a number of seconds (at least "不到1分钟"). */
export function waited(seconds) {
  if (seconds === null || seconds === undefined) return '—'
  let s = Math.max(0, Math.floor(seconds))
  const d = Math.floor(s / 86400); s -= d * 86400
  const h = Math.floor(s / 3600); s -= h * 3600
  const m = Math.floor(s / 60)
  if (!d && !h && !m) return '不到1分钟'
  return (d ? `${d}天` : '') + (h ? `${h}小时` : '') + (m && !d ? `${m}分钟` : '')
}

/** A point's service hours as the services describe them
 * ("09:30-11:30, 13:30-16:00 (Asia/Shanghai) during 网上报名 and 核对确认, not during 抽查复核")
 * in Chinese. */
export function hoursZh(text) {
  if (!text) return ''
  const m = /^(.*?) \(([^)]*)\) during (.*?)(?:, not during (.*))?$/.exec(text)
  if (!m) return text
  const times = m[1].split(', ').join('、')
  const during = m[3].split(/, | and /).join('、')
  return `${during}期间每天 ${times}（北京时间）` + (m[4] ? `；${m[4]}期间不办理` : '')
}

/** An eligibility rule id ("2026.L1.本科.science_engineering") in words. */
export function ruleZh(rule) {
  if (!rule) return ''
  if (rule === 'integrity.live-record') return '诚信档案中有有效记录'
  if (rule === 'education.unverified') return '学历未能通过学历登记库核验'
  const noRules = /^(\d{4})\.no-eligibility-rules$/.exec(rule)
  if (noRules) return `${noRules[1]}年度没有报考条件`
  const parts = rule.split('.')
  if (parts.length >= 3 && LEVELS[parts[1]]) {
    const [year, level, education, category] = parts
    if (education === 'no-qualifying-education') return `${year}年${LEVELS[level]}：无符合报考条件的学历`
    return `${year}年${LEVELS[level]}报考条件：${education}${category ? `（${EDUCATION[category] || category}）` : ''}`
  }
  return rule
}

/** The Chinese message of a refused manual-check or enquiry action, with the service hours
 * when the point is closed. */
export function refusalZh(error) {
  if (error?.reason === 'out_of_service') {
    const hours = hoursZh(error.raw?.fields?.service_hours || '')
    return `现在不在本报名点的服务时间内，不能办理。${hours ? `服务时间：${hours}。` : ''}`
  }
  if (error?.reason === 'wrong_point') return '这不是本报名点的考生，不能办理。'
  if (error?.reason === 'wrong_state') return '该考生的核查状态已变化，请刷新页面后再看。'
  return error?.message || '操作未成功，请稍后再试。'
}

export const FILE_KIND = { 'application/pdf': 'PDF', 'image/jpeg': 'JPEG 图片' }

/** "1.2 MB" */
export function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`
  return `${bytes} B`
}
