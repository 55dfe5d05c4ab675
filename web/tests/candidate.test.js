import { describe, expect, it } from 'vitest'
import { renewAt } from '../src/api.js'
import { canEnquire, canSendProof, canWithdraw, nextStep, proofDeadline } from '../src/lib/nextstep.js'
import { backgroundIsWhite, isJpeg, photoProblems } from '../src/lib/photo.js'
import { historyLabel, reasonText } from '../src/lib/reasons.js'

const SESSION = { windows: {
  verification: { start: '2026-04-07T10:00:00+08:00', end: '2026-04-14T16:00:00+08:00' },
  confirmation: { start: '2026-04-17T10:00:00+08:00', end: '2026-04-18T16:00:00+08:00' },
  ticket_printing: { start: '2026-06-10T10:00:00+08:00', end: '2026-06-12T16:00:00+08:00' },
  spot_check: { start: '2026-04-15T00:00:00+08:00', end: '2026-04-16T23:59:59+08:00' },
} }

describe('recorded reasons in Chinese', () => {
  it('reads the automatic check with its numbers', () => {
    expect(reasonText('本科, science/engineering: needs 3 years of metrology work by 2026-12-31; has 14 years 11 months'))
      .toBe('学历「本科」（理工类专业）须在 2026 年 12 月 31 日前从事计量工作满 3 年；您填写的计量工作年限为 14 年 11 个月。')
    expect(reasonText('大专, other major: needs 1 year of metrology work by 2026-12-31; has no metrology work'))
      .toContain('满 1 年；您填写的计量工作年限为 无计量工作经历')
  })

  it('reads proof requests, reopenings and endings', () => {
    expect(reasonText('the commitment (告知承诺) was withdrawn: proof is checked by hand')).toContain('撤回告知承诺')
    expect(reasonText('reopened by registration point 2916 after your enquiry (疑问核实): send proof again for the manual check before confirmation closes. 请重新上传。'))
      .toBe('报名点 2916 答复您的疑问后重新受理：请在核对确认截止前重新提交证明材料，等待人工核查。答复：请重新上传。')
    expect(reasonText('not confirmed before confirmation closed (逾期视为放弃报名)')).toBe('核对确认截止前未确认，视为放弃报名。')
    expect(reasonText('报名不成功: eligibility still unresolved when confirmation closed; your enquiry e1 was still open, and enquiries had to be settled before then (逾期视作报名不成功)'))
      .toContain('当时您的疑问尚未答复')
  })

  it('shows staff reasons as written and never unknown English', () => {
    expect(reasonText('工作证明未加盖单位公章')).toBe('工作证明未加盖单位公章')
    expect(reasonText('materials verified')).toBe('详情请咨询您的报名点。')
    expect(reasonText('')).toBe('')
    expect(historyLabel('ManualCheckRejected')).toBe('人工核查不通过')
    expect(historyLabel('SomethingNew')).toBe('记录')
  })
})

describe('the next step and its deadline', () => {
  it('asks for proof until verification closes, or confirmation after a reopening', () => {
    const app = { status: 'proof_requested', history: [{ type: 'ProofRequested', cause: 'commitment_withdrawn' }] }
    expect(proofDeadline(SESSION, app)).toBe('2026-04-14T16:00:00+08:00')
    const reopened = { status: 'proof_requested', history: [...app.history, { type: 'ProofRequested', cause: 'enquiry_reopened' }] }
    expect(proofDeadline(SESSION, reopened)).toBe('2026-04-18T16:00:00+08:00')
    expect(nextStep(SESSION, reopened).deadline).toBe('2026-04-18T16:00:00+08:00')
    expect(canSendProof(app)).toBe(true)
  })

  it('sends the eligible to confirm and the confirmed to the ticket', () => {
    expect(nextStep(SESSION, { status: 'eligible' })).toMatchObject({ action: '/confirm', deadline: SESSION.windows.confirmation.end })
    expect(nextStep(SESSION, { status: 'confirmed' })).toMatchObject({ action: '/ticket', deadline: SESSION.windows.ticket_printing.end })
  })

  it('allows withdrawal and enquiries only where the services do', () => {
    expect(canWithdraw({ status: 'auto_passed', commitment: {} })).toBe(true)
    expect(canWithdraw({ status: 'auto_passed', commitment: null })).toBe(false)
    expect(canWithdraw({ status: 'proof_requested', commitment: {} })).toBe(false)
    expect(canEnquire({ status: 'manual_rejected', open_enquiry: null })).toBe(true)
    expect(canEnquire({ status: 'manual_rejected', open_enquiry: 'e1' })).toBe(false)
    expect(canEnquire({ status: 'auto_passed' })).toBe(false)
  })
})

describe('the photo rule in the browser', () => {
  const pixels = (w, h, edge, centre) => {
    const data = new Uint8ClampedArray(w * h * 4)
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = x < 6 || x >= w - 6 || y < 6 ? edge : centre
        data.set([v, v, v, 255], (y * w + x) * 4)
      }
    }
    return data
  }

  it('tells a white background from a grey one on the strips the server reads', () => {
    expect(backgroundIsWhite(pixels(295, 413, 255, 40), 295, 413)).toBe(true)
    expect(backgroundIsWhite(pixels(295, 413, 150, 255), 295, 413)).toBe(false)
  })

  it('names each problem', () => {
    expect(isJpeg(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toBe(true)
    expect(isJpeg(new Uint8Array([0x89, 0x50, 0x4e, 0x47]))).toBe(false)
    expect(photoProblems({ size: 5000, jpeg: true, width: 295, height: 413, whiteBackground: true })).toEqual([])
    const all = photoProblems({ size: 300 * 1024, jpeg: false, width: 300, height: 400, whiteBackground: false })
    expect(all).toHaveLength(4)
    expect(all[1]).toContain('300 KB')
    expect(all[2]).toContain('300×400')
  })
})

describe('token renewal', () => {
  it('renews two minutes before the token expires, never sooner than 30 s', () => {
    expect(renewAt(900, 0)).toBe(780_000)
    expect(renewAt(60, 0)).toBe(30_000)
  })
})

describe('proof sent, the manual check still to come', () => {
  it('gives the verification close while it is ahead, then the confirmation close', () => {
    const at = (now) => nextStep({ ...SESSION, now }, { status: 'proof_submitted' })
    expect(at('2026-04-10T10:00:00+08:00')).toMatchObject({ deadline: SESSION.windows.verification.end, deadlineLabel: '资格核查截止' })
    const late = at('2026-04-15T10:00:00+08:00')
    expect(late).toMatchObject({ deadline: SESSION.windows.confirmation.end, deadlineLabel: '核对确认截止' })
    expect(late.text).toContain('资格核查时段已结束')
  })
})

describe('after confirmation', () => {
  const windows = { ...SESSION.windows, scores: { start: '2026-08-15T09:00:00+08:00', end: '2026-12-31T23:59:59+08:00' } }
  it('points to the ticket, then the scores', () => {
    const at = (now) => nextStep({ windows, now }, { status: 'confirmed' })
    expect(at('2026-06-10T10:00:00+08:00')).toMatchObject({ action: '/ticket' })
    expect(at('2026-07-01T10:00:00+08:00')).toMatchObject({ deadline: windows.scores.start, deadlineLabel: '成绩公布' })
    expect(at('2026-08-15T09:00:01+08:00')).toMatchObject({ action: '/scores', deadline: null })
  })
})
