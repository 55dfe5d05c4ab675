// A refused score file's row-by-row report in Chinese. The scoring service names each
// problem in English under "row N" (the file's line number); these are its sentences.

const ROW_PROBLEMS = [
  [/^unknown ticket '?([^' ]+)'?:.*$/, '准考证号 $1 不存在（本次考试未发放此准考证）'],
  [/^ticket (\S+) was cancelled.*$/, '准考证 $1 已作废（报名无效），不能录入成绩'],
  [/^unknown subject '?([^' ]+)'? \(subjects of this ticket: (.*)\)$/, '科目 $1 不存在（该考生的科目：$2）'],
  [/^ticket (\S+) does not sit (\S+) \(exempt\)$/, '准考证 $1 已免考科目 $2'],
  [/^ticket (\S+) does not sit (\S+) \(it sits (.*)\)$/, '准考证 $1 未报考科目 $2（报考科目：$3）'],
  [/^duplicate of row (\d+).*$/, '与第 $1 行重复'],
  [/^score (\S+) is out of range 0\.\.(\S+) for (\S+)$/, '分数 $1 超出范围（$3 满分 $2）'],
  [/^score (\S+) is negative$/, '分数 $1 为负数'],
  [/^score (\S+) has more than one decimal place$/, '分数 $1 超过一位小数'],
  [/^score '?(.*?)'? is not a number.*$/, '分数“$1”不是数字（缺考请留空或填写“缺考”）'],
  [/^the ticket number is empty$/, '准考证号为空'],
  [/^the subject is empty$/, '科目为空'],
  [/^expected 3 columns.*found (\d+)$/, '应为 3 列（准考证号、科目、分数），实际 $1 列'],
  [/^the first row must be the header.*$/, '第一行必须是表头 ticket_number,subject,score'],
  [/^not readable as CSV.*$/, '无法按 CSV 读取'],
]

function one(problem) {
  for (const [pattern, zh] of ROW_PROBLEMS) {
    if (pattern.test(problem)) return problem.replace(pattern, zh)
  }
  return problem
}

/** `fields` of the refusal ({"row 3": "a; b", "csv": "..."}) as [{row, problems: [zh]}]
 * in row order; `csv` (the whole file) first. */
export function rowReport(fields) {
  const out = []
  for (const [key, text] of Object.entries(fields || {})) {
    const m = /^row (\d+)$/.exec(key)
    out.push({ row: m ? Number(m[1]) : 0, label: m ? `第 ${m[1]} 行` : '整个文件',
               problems: String(text).split('; ').map(one), english: String(text) })
  }
  return out.sort((a, b) => a.row - b.row)
}
