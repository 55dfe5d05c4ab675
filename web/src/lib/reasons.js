// The reasons the services record on an application (its status, its history) in Chinese.
// The checks write them in English with the numbers (operators read them in logs); staff and
// the authority write theirs in Chinese, which is shown as written.

const CATEGORY = { 'science/engineering': '理工类专业', 'other major': '其他专业', 'any major': '不限专业' }
const WINDOWS = {
  application: '网上报名', verification: '资格核查', spot_check: '抽查复核', confirmation: '核对确认',
  ticket_printing: '打印准考证', exam: '考试', scores: '查询成绩', certificates: '证书',
}

function tenure(text) {
  if (/no metrology work/.test(text)) return '无计量工作经历'
  const y = /(\d+) years?/.exec(text), m = /(\d+) months?/.exec(text)
  return `${y ? `${y[1]} 年` : ''}${m ? ` ${m[1]} 个月` : ''}`.trim() || text
}

const RULES = [
  [/^(.+?), (science\/engineering|other major|any major): needs (\d+) years? of metrology work by (\d{4})-(\d{2})-(\d{2}); has (.+)$/,
    (m) => `学历「${m[1]}」（${CATEGORY[m[2]]}）须在 ${m[4]} 年 ${Number(m[5])} 月 ${Number(m[6])} 日前从事计量工作满 ${m[3]} 年；您填写的计量工作年限为 ${tenure(m[7])}。`],
  [/needs (\S+) or above education; no education entry qualifies/,
    (m) => `报考该级别须具备${m[1]}及以上学历，您填写的学历均不符合。`],
  [/^the exemption from .* needs proof/, () => '申请免试科目须提交证明材料，由报名点与报考条件一并人工核查。'],
  [/^without the commitment/, () => '未选择告知承诺制：学历和计量工作年限的证明材料须由报名点人工核查。'],
  [/^the commitment \(告知承诺\) was withdrawn/, () => '您已撤回告知承诺：证明材料须由报名点人工核查。'],
  [/^reopened by registration point (\S+) after your enquiry[^.]*\.\s*(.*)$/s,
    (m) => `报名点 ${m[1]} 答复您的疑问后重新受理：请在核对确认截止前重新提交证明材料，等待人工核查。${m[2] ? `答复：${m[2]}` : ''}`],
  [/^rejected at manual check: (.*)$/s, (m) => `人工核查不通过（报名终止）：${m[1]}`],
  [/rejected at manual check, and no new proof/, () => '报名不成功：人工核查不通过，且核对确认截止前没有重新提交并通过证明材料（逾期视作报名不成功）。'],
  [/^not confirmed before confirmation closed/, () => '核对确认截止前未确认，视为放弃报名。'],
  [/eligibility still unresolved when confirmation closed/, () => '报名不成功：核对确认截止时资格核查仍未完成（逾期视作报名不成功）。'],
  [/^confirmation closed before an answer/, () => '核对确认截止时疑问尚未答复，报名不成功。'],
  [/^the registration was voided/, () => '报名已被考试机构认定无效。'],
]

/** A recorded reason in Chinese ('' for none). */
export function reasonText(reason) {
  const text = String(reason ?? '').trim()
  if (!text) return ''
  for (const [pattern, zh] of RULES) {
    const m = pattern.exec(text)
    if (m) return zh(m) + (/your enquiry \S+ was still open/.test(text) ? '（当时您的疑问尚未答复。）' : '')
  }
  // written by staff or the authority (Chinese): as written
  if (/[\u4e00-\u9fff]/.test(text)) return text
  return '详情请咨询您的报名点。'
}

export function windowLabel(name) {
  return WINDOWS[name] || name
}

/** What each history entry means, in Chinese. */
export const HISTORY_LABELS = {
  ApplicationSubmitted: '提交报名', AutoCheckPassed: '自动核查通过', AutoCheckFailed: '自动核查不通过',
  CommitmentWithdrawn: '撤回告知承诺', ProofRequested: '要求提交证明材料', ProofSubmitted: '提交证明材料',
  ManualCheckPassed: '人工核查通过', ManualCheckRejected: '人工核查不通过', SpotCheckSelected: '抽中抽查复核',
  SpotCheckPassed: '抽查复核通过', SpotCheckRejected: '抽查复核不通过',
  EligibilityConfirmed: '资格核查通过', ApplicationConfirmed: '核对确认', ApplicationLapsed: '报名未完成',
  RegistrationTerminated: '报名终止', RegistrationVoided: '报名无效', EnquiryRaised: '提出疑问',
  EnquiryAnswered: '报名点答复疑问', EnquiryClosed: '疑问关闭', VerificationRecorded: '资格核查结果',
}

export function historyLabel(type) {
  return HISTORY_LABELS[type] || '记录'
}
