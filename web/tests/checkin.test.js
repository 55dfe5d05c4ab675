import { describe, expect, it } from 'vitest'
import { checkInMark } from '../src/lib/checkin.js'
import { chineseError } from '../src/lib/messages.js'

const row = { subjects: ['L1-LAW', 'L1-DATA'], status: 'printed', checked_in: ['L1-LAW'],
  absent: ['L1-DATA'] }

describe('check-in marks', () => {
  it('says what exam day recorded for the chosen subject', () => {
    expect(checkInMark(row, 'L1-LAW')).toEqual({ kind: 'in', text: '已签到' })
    expect(checkInMark(row, 'L1-DATA')).toEqual({ kind: 'absent', text: '缺考' })
    expect(checkInMark(row, 'L1-CASE').kind).toBe('other')
    expect(checkInMark({ ...row, checked_in: [], absent: [] }, 'L1-LAW').kind).toBe('waiting')
  })

  it('bars forfeited and cancelled tickets', () => {
    const free = { ...row, checked_in: [], absent: [] }
    expect(checkInMark({ ...free, status: 'forfeited' }, 'L1-LAW').text).toContain('放弃考试')
    expect(checkInMark({ ...free, status: 'cancelled' }, 'L1-LAW').text).toBe('准考证已作废')
  })
})

describe('check-in refusals in Chinese', () => {
  const said = (message) => chineseError(409, { error: { code: 'refused', message } }).message

  it('names the window of the sitting and whether it has opened', () => {
    expect(said('Check-in for L1-CASE is open from 2026-06-14 07:45:00 until the sitting ends at '
      + '2026-06-14 11:45:00 (Asia/Shanghai); it has not opened yet, it is now 2026-06-13 09:00:00.'))
      .toBe('科目 L1-CASE 的签到时间为 2026-06-14 07:45:00 至 2026-06-14 11:45:00（北京时间），现在尚未开始签到。')
    expect(said('Check-in for L1-LAW is open from 2026-06-13 07:45:00 until the sitting ends at '
      + '2026-06-13 11:45:00 (Asia/Shanghai); it has closed, it is now 2026-06-13 12:00:00.'))
      .toContain('签到已结束')
  })

  it('explains a document that does not match and a ticket that does not admit', () => {
    expect(said('The identity document does not match the candidate on this ticket: the candidate '
      + 'must show the document they registered with.')).toContain('报名时使用的身份证件')
    expect(said('Subject L2-LAW is not on this ticket; it admits to L1-LAW, L1-DATA.'))
      .toBe('准考证上没有科目 L2-LAW（可参加的科目：L1-LAW, L1-DATA）。')
    expect(said('No admission ticket has this number. Check the number on the ticket.'))
      .toContain('没有这个准考证号')
  })
})
