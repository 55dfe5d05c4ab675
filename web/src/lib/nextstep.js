// What the candidate should do next, and until when, for each application status.
import { shanghaiTime } from './time.js'

const PROOF_STATUSES = new Set(['proof_requested', 'manual_rejected'])

/** The cause of the latest proof request in an application's history (or null). */
export function proofCause(app) {
  const last = [...(app?.history || [])].reverse().find((h) => h.type === 'ProofRequested')
  return last?.cause || null
}

/** Until when proof is taken: verification's end, or confirmation's after a spot-check
 * rejection or an enquiry's reopening (the registration service's proof_window). */
export function proofDeadline(session, app) {
  const late = ['spot_check_rejected', 'enquiry_reopened'].includes(proofCause(app))
  return session?.windows?.[late ? 'confirmation' : 'verification']?.end || null
}

export function canSendProof(app) {
  return Boolean(app && PROOF_STATUSES.has(app.status))
}

export function canWithdraw(app) {
  return Boolean(app?.commitment && ['submitted', 'auto_passed'].includes(app.status))
}

export function canEnquire(app) {
  return Boolean(app && ['manual_rejected', 'spot_rejected', 'terminated'].includes(app.status) && !app.open_enquiry)
}

/** {text, deadline (ISO) or null, action: route or null} for the status page. */
export function nextStep(session, app) {
  const w = (name) => session?.windows?.[name] || {}
  switch (app?.status) {
    case 'submitted':
      return { text: '报名已提交，系统正在核查报考条件，请稍后刷新本页查看结果。', deadline: null }
    case 'auto_passed':
    case 'manual_passed':
    case 'spot_passed':
      return { text: `资格核查已通过。抽查复核（${shanghaiTime(w('spot_check').start)} 至 ${shanghaiTime(w('spot_check').end)}）后，请在核对确认时段内核对确认。`,
        deadline: w('confirmation').start, deadlineLabel: '核对确认开始' }
    case 'spot_check':
      return { text: '您的报名被抽中抽查复核，考试机构正在复核，请留意站内信。', deadline: w('spot_check').end, deadlineLabel: '抽查复核截止' }
    case 'auto_failed':
    case 'proof_requested':
    case 'manual_rejected':
      return { text: app.status === 'manual_rejected'
        ? '人工核查不通过。您可以按原因补充证明材料重新提交，或对核查结果提出疑问。'
        : '请上传证明材料（学历证书、计量工作证明等，PDF 或 JPEG），由报名点人工核查。',
      deadline: proofDeadline(session, app), deadlineLabel: '证明材料提交截止' }
    case 'spot_rejected':
      return { text: '抽查复核不通过。请按原因提交证明材料，或提出疑问。', deadline: w('confirmation').end, deadlineLabel: '核对确认截止' }
    case 'commitment_withdrawn':
      return { text: '您已撤回承诺，请等待系统要求提交证明材料。', deadline: proofDeadline(session, app), deadlineLabel: '证明材料提交截止' }
    case 'proof_submitted': {
      // past the verification window the point may still decide: what counts then is confirmation
      const now = session?.now ? new Date(session.now).getTime() : null
      const end = w('verification').end
      if (now !== null && end && now > new Date(end).getTime() + 999) {
        return { text: '资格核查时段已结束，报名点仍在审核您的证明材料；审核通过后，请在核对确认截止前核对确认，如有疑问请联系报名点。',
          deadline: w('confirmation').end, deadlineLabel: '核对确认截止' }
      }
      return { text: '证明材料已提交，等待报名点人工核查。', deadline: end, deadlineLabel: '资格核查截止' }
    }
    case 'eligible':
      return { text: '资格核查通过。请核对报名信息并确认，逾期未确认视为放弃报名。', deadline: w('confirmation').end,
        deadlineLabel: '核对确认截止', action: '/confirm' }
    case 'confirmed': {
      // after the printing window the next thing is the exam, then the scores
      const now = session?.now ? new Date(session.now).getTime() : null
      const passed = (name) => now !== null && w(name).end && now > new Date(w(name).end).getTime() + 999
      if (passed('scores') || (now !== null && w('scores').start && now >= new Date(w('scores').start).getTime())) {
        return { text: '报名成功。成绩已在查询成绩时段公布，请查看成绩。', deadline: null, action: '/scores' }
      }
      if (passed('ticket_printing')) {
        return { text: '报名成功。考试结束后，成绩将在查询成绩时段公布。', deadline: w('scores').start,
          deadlineLabel: '成绩公布' }
      }
      return { text: '报名成功。请在打印准考证时段内下载并打印准考证，逾期未打印视为放弃考试。',
        deadline: w('ticket_printing').end, deadlineLabel: '打印准考证截止', action: '/ticket' }
    }
    case 'lapsed':
      return { text: '报名未完成（逾期）。本次考试报名已结束。', deadline: null }
    case 'terminated':
      return { text: '报名终止。如对结果有疑问，请联系您的报名点。', deadline: null }
    case 'voided':
      return { text: '报名已被认定无效。', deadline: null }
    default:
      return { text: '', deadline: null }
  }
}
