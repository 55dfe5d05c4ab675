import { describe, expect, it } from 'vitest'
import { rowReport } from '../src/views/authority/rows.js'
import { hoursZh, refusalZh, ruleZh, size, waited } from '../src/views/staff/labels.js'

describe('the staff screens in Chinese', () => {
  it('says how long a case has waited', () => {
    expect(waited(30)).toBe('不到1分钟')
    expect(waited(50 * 60)).toBe('50分钟')
    expect(waited(2 * 3600 + 5 * 60)).toBe('2小时5分钟')
    expect(waited(3 * 86400 + 3600 + 60)).toBe('3天1小时')
    expect(waited(null)).toBe('—')
  })

  it("puts a point's service hours in Chinese", () => {
    const english = '09:30-11:30, 13:30-16:00 (Asia/Shanghai) during 网上报名, 资格核查 and 核对确认, not during 抽查复核'
    expect(hoursZh(english)).toBe(
      '网上报名、资格核查、核对确认期间每天 09:30-11:30、13:30-16:00（北京时间）；抽查复核期间不办理')
    expect(hoursZh('09:00-17:00 (Asia/Shanghai) during 网上报名')).toBe('网上报名期间每天 09:00-17:00（北京时间）')
    expect(hoursZh('')).toBe('')
  })

  it('explains a decision refused outside service hours, naming them', () => {
    const error = { reason: 'out_of_service', message: '按照考试规定，此项业务现在不能办理。',
      raw: { fields: { service_hours: '09:30-11:30 (Asia/Shanghai) during 资格核查' } } }
    expect(refusalZh(error)).toBe('现在不在本报名点的服务时间内，不能办理。服务时间：资格核查期间每天 09:30-11:30（北京时间）。')
    expect(refusalZh({ reason: 'wrong_point' })).toContain('不是本报名点')
    expect(refusalZh({ message: '数据刚刚被更新' })).toBe('数据刚刚被更新')
  })

  it('names eligibility rules', () => {
    expect(ruleZh('2026.L1.本科.science_engineering')).toBe('2026年一级报考条件：本科（理工类专业）')
    expect(ruleZh('2026.L2.no-qualifying-education')).toBe('2026年二级：无符合报考条件的学历')
    expect(ruleZh('integrity.live-record')).toBe('诚信档案中有有效记录')
    expect(ruleZh('2026.L2.中专.any')).toBe('2026年二级报考条件：中专（不限专业）')
    expect(ruleZh('2027.no-eligibility-rules')).toBe('2027年度没有报考条件')
    expect(size(41)).toBe('41 B')
    expect(size(6 * 1024)).toBe('6 KB')
  })
})

describe("a refused score file's report", () => {
  it('lists rows in order, in Chinese', () => {
    const report = rowReport({
      'row 5': 'duplicate of row 3 (ticket T1, subject L1-DATA)',
      'row 2': 'score 130 is out of range 0..120 for L1-LAW; ticket T1 does not sit L2-LAW (it sits L1-LAW, L1-DATA)',
      'row 4': "unknown ticket 'NOPE': no admission ticket with this number was issued for S",
      csv: 'something about the whole file',
    })
    expect(report.map((r) => r.label)).toEqual(['整个文件', '第 2 行', '第 4 行', '第 5 行'])
    expect(report[1].problems).toEqual(['分数 130 超出范围（L1-LAW 满分 120）',
      '准考证 T1 未报考科目 L2-LAW（报考科目：L1-LAW, L1-DATA）'])
    expect(report[2].problems).toEqual(['准考证号 NOPE 不存在（本次考试未发放此准考证）'])
    expect(report[3].problems).toEqual(['与第 3 行重复'])
    expect(report[0].problems).toEqual(['something about the whole file']) // unknown: as sent
  })
})
