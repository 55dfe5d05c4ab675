import { describe, expect, it } from 'vitest'
import { knownMessage } from '../src/lib/messages.js'

// Refusals the services give (their English text, with values filled in), each with a part
// of the Chinese a person must see. A new refusal in a service belongs here with its Chinese.
const REFUSALS = [
  // account
  ['验证码错误或已失效，请重新获取。 The code is wrong or no longer valid.', '验证码错误或已失效'],
  ['A staff account has no candidate profile to maintain.', '工作人员账号'],
  ['unknown profile section', '个人信息'],
  ['Unknown profile section hobbies.', '个人信息'],
  ['some fields are not valid', '填写的内容有误'],
  ['No such account.', '没有找到该账号'],
  ['No photo uploaded yet.', '尚未上传照片'],
  ['This username is taken; choose another.', '用户名已被使用'],
  ['An account with this ID number already exists: one account per person.', '证件号码已注册'],
  ['This mobile number is already used by another account.', '手机号码已被其他账号使用'],
  ['These details are already registered to another account.', '每人只能注册一个账号'],
  ['Not an account id.', '编号有误'],
  // admission
  ['The ticket sequence is used up: 3 more ticket(s) for 2916 would need sequence number 10000, beyond 9999 (4 digits, shared by every session so that no two tickets ever get one number).', '序号已用完'],
  ['The ticket number format {seq} gives 2026000001 to two candidates (a and b); the session\'s format must make numbers unique.', '同一号码'],
  ['Check-in for S1 is open from 2026-10-24 08:00:00 until the sitting ends at 2026-10-24 11:00:00 (Asia/Shanghai); it has not opened yet, it is now 2026-10-24 07:00:00.', '尚未开始签到'],
  ['Check-in for S1 is open from 2026-10-24 08:00:00 until the sitting ends at 2026-10-24 11:00:00 (Asia/Shanghai); it has closed, it is now 2026-10-24 12:00:00.', '签到已结束'],
  ['Admission has no exam session 2026-sh (yet).', '尚未收到这次考试'],
  ['No room 2916/09 in session 2026-sh; its rooms are 2916/01, 2916/02.', '没有考场 2916/09'],
  ['This ticket number is used in more than one exam session; give the session (or scan the ticket\'s QR code).', '请先选择考试'],
  ['The scanned QR code belongs to another ticket than the number given.', '不属于同一张准考证'],
  ['This QR code is not a Kaowu admission ticket code; type in the ticket number.', '请输入准考证号'],
  ['The QR code\'s check value does not match its ticket number: the ticket may be forged or altered. Check the candidate\'s identity document and call the chief invigilator.', '伪造'],
  ['Subject S2 is not on this ticket; it admits to S1.', '没有科目 S2'],
  // certificate
  ['QualificationAttained q-1 names no candidate c-1: a certificate needs the holder\'s name and document.', '不能制作证书'],
  ['Certificate ZS2026001 was already revoked on 2026-12-01 10:00:00 (成绩无效).', '已于 2026-12-01 10:00:00 撤销'],
  ['Certificate ZS2026001 was revoked on 2026-12-01 10:00:00 (成绩无效); it is not handed out.', '不发放纸质证书'],
  ['Unknown format docx.', '下载格式'],
  ['This certificate belongs to another candidate; only its holder may download it.', '持证人本人'],
  ['The certificates window (证书) of session 2026-sh is not known yet; downloads open when it starts.', '证书发放'],
  ['No exam session 2026-sh is known here; a pickup notice names a scheduled session.', '领证通知'],
  ['The pickup period must start before it ends.', '领证开始时间'],
  ['No paper-certificate pickup notice (领证通知) has been published for session 2026-sh yet; collection starts after it.', '尚未发布领证通知'],
  ['Paper certificates of session 2026-sh can be collected from 2026-12-10 09:00:00 (领证通知); it is now 2026-12-01 09:00:00.', '自 2026-12-10 09:00:00 起领取'],
  ['The paper certificate ZS1 was already collected on 2026-12-10 09:30:00 by 王建国 (proxy).', '由 王建国（代领）领取'],
  ['That is the holder\'s own document: record a collection by the holder (by_proxy false), or the proxy\'s own document.', '代领人自己的证件'],
  ['The document shown does not match the certificate holder\'s; the holder collects with the ID document they registered with, or a proxy collects (by_proxy) with their own.', '与持证人不符'],
  ['The certificate changed while it was being prepared; please try again.', '请重试'],
  ['No status list 3.', '状态列表'],
  // registration
  ['Session 2026-sh is already scheduled; amend its timetable instead.', '调整时间安排'],
  ['2027年度没有报考条件，不能加载考试计划 2027-sh：请先加载该年度的报考条件（kaowu rules load 2027 FILE，或 PUT /api/authority/rules/2027）。No eligibility rules for exam year 2027: load them first.', '2027年度没有报考条件'],
  ['2027年度的报考条件没有级别 L3，不能加载考试计划 2027-sh：请先加载包含这些级别的报考条件。The eligibility rules of 2027 have no rules for level(s) L3.', '没有级别 L3'],
  ['网上报名 (application) 窗口已于 2026-04-01 16:00:00 结束，不能再调整：结束时的处理已经执行，期间发生的事不能改写。The application window closed at 2026-04-01 16:00:00; a closed window cannot be amended.', '不能再调整'],
  ['The application cannot be accepted as it stands.', '报名信息有误'],
  ['No such application.', '没有找到该报名记录'],
  ['This registration was already voided at 2026-05-01 10:00:00 by auth1: 冒名顶替.', '已于 2026-05-01 10:00:00 被认定无效'],
  ['Voiding a registration needs a reason.', '须填写原因'],
  ['The candidate\'s photo is shown to the staff of their registration point only.', '报名点的工作人员'],
  ['This application belongs to registration point 2916, not yours (2917).', '报名点 2916'],
  ['Registration has not heard of this account yet.', '稍后再试'],
  ['This application has no such proof file.', '证明材料'],
  ['No exam session 2026-sh has been scheduled.', '没有找到这次考试'],
  ['No such exam session.', '没有找到这次考试'],
  // scoring
  ['The score file is larger than 5 MiB; nothing was imported. A session\'s scores come in one file (a re-import replaces it whole): ask the marking centre for one without padding or extra columns.', '超过 5 MiB'],
  ['The score file has a header but no score rows; nothing was imported.', '只有表头'],
  ['The score file has more than 200000 rows; nothing was imported.', '超过 200000 行'],
  ['scores.csv: 4 problem(s) in 3 row(s); nothing was imported. Correct the rows listed and import the whole file again.', '3 行共有 4 处问题'],
  ['The scores of 2026-sh were published at 2026-11-20T02:00:00Z; imports are refused after publication (void a candidate\'s scores instead).', '成绩已于 2026-11-20 10:00:00 公布，公布后不能再导入'],
  ['Scores can be imported only after the 考试 (exam) window has ended; it is now 2026-10-24 10:00:00.', '考试结束后'],
  ['The 查询成绩 (scores) window has closed; scores of this session can no longer be imported; it is now 2027-01-01 10:00:00.', '不能再导入'],
  ['The scores of 2026-sh were already published at 2026-11-20T02:00:00Z.', '成绩已于 2026-11-20 10:00:00 公布，无需重复公布'],
  ['No scores have been imported for 2026-sh; import the marking centre\'s file first.', '尚未导入成绩'],
  ['No scores have been imported for 2026-sh yet.', '尚未导入成绩'],
  ['Nothing to publish for 2026-sh.', '没有可以公布的成绩'],
  ['These scores were already voided: 作弊', '已被认定无效'],
  ['No exam session 2026-sh is known to scoring.', '成绩系统'],
  ['No ticket 2026291600001 in 2026-sh.', '没有准考证 2026291600001'],
  ['This candidate holds no admission ticket for this session: there are no scores to void.', '没有可认定无效的成绩'],
  ['Scores of 2026 上海计量 are published at 2026-11-20 10:00:00 Asia/Shanghai (查询成绩 (scores)); not before.', '成绩将于 2026-11-20 10:00:00（北京时间）公布'],
  ['Scores can be imported only after the 考试 (exam) window has ended; it is now 2026-10-24 10:00:00 Asia/Shanghai.', '考试结束后'],
  // verification
  ['cannot decide a manual check: case app-1 is waiting for the candidate\'s proof', '正在等待考生提交证明材料，不能作出人工核查决定'],
  ['cannot raise an enquiry: case app-1 was voided by the exam authority (报名无效)', '已被认定无效，不能提出疑问'],
  ['manual check rejection needs a reason', '请填写原因'],
  ['manual check rejection: the reason is too long', '最多 500 字'],
  ['case app-1 has no commitment to withdraw', '无需撤回承诺'],
  ['cannot withdraw the commitment: case app-1 already passed the manual check on proof', '不能再撤回告知承诺'],
  ['cannot accept proof: case app-1 was finally rejected (报名终止)', '报名已终止'],
  ['proof needs at least one file', '至少选择一个文件'],
  ['staff of point 2917 cannot decide cases of point 2916', '不能处理报名点 2916'],
  ['staff of point 2917 cannot answer enquiries about cases of point 2916', '不能答复报名点 2916'],
  ['outside the registration point\'s service hours: point 2916 decides manual checks only during its service hours (Mon-Fri 09:00-17:00)', '服务时间内'],
  ['outside the registration point\'s service hours: point 2916 answers enquiries only during its service hours', '疑问只能在服务时间内办理'],
  ['the spot-check rate must be between 0 and 1', '0 到 1'],
  ['The spot check for session 2026-sh has already been drawn; the sample taken stands (抽查已完成).', '已经抽查'],
  ['a draw needs an id', '编号'],
  ['a spot-check decision needs who took it', '办理人'],
  ['question must not be blank', '不能为空'],
  ['question is too long', '内容太长'],
  ['You can only raise enquiries about your own application.', '本人的报名'],
  ['Your enquiry e-1 (raised 2026-04-10 10:00:00) is still waiting for an answer from registration point 2916; one open enquiry at a time.', '每次只能有一个'],
  ['There is no manual-check or spot-check rejection to question: case app-1 has passed. Enquiries (疑问核实) are about a rejection that stands.', '疑问核实针对'],
  ['case app-1 has no enquiry e-9', '没有找到该疑问'],
  ['enquiry e-1 is already answered by staff2916 at 2026-04-10T02:00:00Z', '已经答复'],
  ['cannot reopen: case app-1 is already confirmed, so the questioned outcome no longer stands; answer without reopening', '不能重新核查'],
  ['no verification case for application app-1: cannot tell whose integrity record to write', '诚信档案'],
  ['新版报考条件缺少已加载考试计划的级别，不能加载（L3）。The new rules lack levels that sessions of 2026 offer (L3).', '新版报考条件缺少'],
  ['no eligibility rules (报考条件) for exam year 2027: rules/2027.yml does not exist (rules exist for: 2026)', '2027 年度没有报考条件'],
  ['2027年度没有报考条件，请先加载（kaowu rules load 2027 FILE，或 PUT /api/authority/rules/2027）。No eligibility rules for exam year 2027.', '2027年度没有报考条件'],
  ['You have no verification case in this exam session.', '没有资格核查记录'],
  ['No such enquiry.', '没有找到该疑问'],
  ['Expected an application id.', '编号有误'],
  ['No verification case for this application (yet).', '还没有资格核查记录'],
]

// an English word a person would have to read (codes such as L1, S1, 2916 or ISO times are fine)
const ENGLISH_WORD = /\b(?![A-Z]?\d)[a-z]{4,}\b/i
const ALLOWED = /kaowu rules load \d+ FILE|\/api\/authority\/rules/g

describe('every refusal the services give is shown in Chinese', () => {
  it.each(REFUSALS)('%s', (english, chinese) => {
    const shown = knownMessage(english)
    expect(shown, english).toBeTruthy()
    expect(shown).toContain(chinese)
    expect(shown.replace(ALLOWED, '').replace(/\([^)]*\)|（[^）]*）/g, '')).not.toMatch(ENGLISH_WORD)
  })
})
