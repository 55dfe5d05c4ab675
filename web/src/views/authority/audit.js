// The audit trail's standard sentences (the services write them in English, for operators)
// in Chinese; people's own reasons are shown as written.

import { shanghaiTime } from '../../lib/time.js'

const WINDOW_NAMES = {
  application: '网上报名', verification: '资格核查', spot_check: '抽查复核', confirmation: '核对确认',
  ticket_printing: '打印准考证', exam: '考试', scores: '查询成绩', certificates: '证书',
}

export const WHAT = [
  [/^viewed proof file (.*) \(\w+\)$/, '查看证明材料：$1'],
  [/^viewed the candidate's profile$/, '查看考生信息'],
  [/^viewed the candidate's photo$/, '查看考生照片'],
  [/^manual check passed$/, '人工核查通过'],
  [/^manual check rejected, final.*$/, '人工核查不通过，报名终止'],
  [/^manual check rejected$/, '人工核查不通过'],
  [/^spot check passed$/, '抽查复核通过'],
  [/^spot check rejected$/, '抽查复核不通过'],
  [/^drew (\d+) of (\d+) passed cases.*$/, '从 $2 名已通过考生中抽取 $1 名'],
  [/^answered enquiry \S+, case reopened$/, '答复疑问，重新核查'],
  [/^answered enquiry \S+$/, '答复疑问'],
  [/^registration voided.*integrity.*$/, '报名无效，记入诚信档案'],
  [/^registration voided.*$/, '报名无效'],
  [/^scores voided.*$/, '成绩无效，记入诚信档案'],
  [/^(\w+) window moved to (\S+) – (\S+)$/,
    (_, w, from, to) => `${WINDOW_NAMES[w] || w}时段改为 ${shanghaiTime(from)} 至 ${shanghaiTime(to)}`],
]
export const WHY = [
  [/^staff of registration point (\S+)$/, '报名点 $1 工作人员'],
  [/^the exam authority$/, '考试机构'],
  [/^random draw at rate (\S+) with seed (\S+).*$/, '按比例 $1、随机种子 $2 抽取（可复现）'],
]

export function zh(table, text) {
  for (const [pattern, out] of table) if (pattern.test(text || '')) return text.replace(pattern, out)
  return text
}
