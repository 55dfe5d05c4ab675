// 考场签到: where one ticket holder stands for one subject's sitting, as the screen says it.
// Absence (缺考) is recorded by the services when the sitting ends, never by hand.

/** {kind, text} of a roster row (admission's session_tickets) for `subject`:
 * in (已签到) | absent (缺考) | barred (no entry: forfeited, cancelled) | other (does not sit
 * it) | waiting (may be checked in). */
export function checkInMark(row, subject) {
  if (!row || !subject) return { kind: 'other', text: '' }
  if ((row.checked_in || []).includes(subject)) return { kind: 'in', text: '已签到' }
  if ((row.absent || []).includes(subject)) return { kind: 'absent', text: '缺考' }
  if (row.status === 'forfeited') return { kind: 'barred', text: '逾期未打印准考证，视为放弃考试' }
  if (row.status === 'cancelled') return { kind: 'barred', text: '准考证已作废' }
  if (!(row.subjects || []).includes(subject)) return { kind: 'other', text: '不考此科目' }
  return { kind: 'waiting', text: '未签到' }
}
