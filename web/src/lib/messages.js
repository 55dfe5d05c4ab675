import { shanghaiTime } from './time.js'

// The API's refusals in Chinese. The services answer in English (operators read the logs);
// a candidate must never see English, raw JSON or an error code. A refusal is shown:
// - next to its input, when the answer names a field (`fields`), with that field's message
//   translated here (known messages, else a plain "…填写有误" for the field), and
// - near the action otherwise, with `reason`/the message translated here, else a Chinese
//   sentence for the error's code.

/** What each error code means to a candidate, when nothing finer is known. */
export const CODE_MESSAGES = {
  validation_failed: '填写的内容有误，请按提示修改。',
  unauthorized: '请先登录。',
  forbidden: '您没有办理此项业务的权限。',
  not_found: '没有找到相关记录。',
  method_not_allowed: '暂不支持此操作。',
  refused: '按照考试规定，此项业务现在不能办理。',
  conflict: '数据刚刚被更新，请刷新页面后重试。',
  too_large: '文件太大。',
  unsupported_media_type: '文件格式不符合要求。',
  rate_limited: '操作过于频繁，请稍后再试。',
  internal: '系统出现问题，已记录，请稍后再试。',
  unavailable: '系统繁忙或正在维护，请稍后再试。',
  network: '无法连接到服务器，请检查网络后重试。',
}

/** Finer reasons the services give (``error.reason``). */
export const REASON_MESSAGES = {
  locked: '连续多次密码错误，账号已临时锁定 15 分钟，请稍后再试。',
  expired: '登录已过期，请重新登录。',
  invalid_code: '验证码不正确、已过期或已使用，请重新获取。',
  signed_out: '您的密码已修改或重置，此前的登录已结束，请重新登录。',
  enquiry_open: '您的上一个疑问尚在等待报名点答复，每次只能有一个待答复的疑问。',
  nothing_to_question: '目前没有可以提出疑问的核查结果：疑问核实针对人工核查或抽查复核不通过的结果。',
}

// the timetable's windows (the session document's names)
const WINDOW_NAMES = {
  application: '网上报名', verification: '资格核查', spot_check: '抽查复核', confirmation: '核对确认',
  ticket_printing: '打印准考证', exam: '考试', scores: '查询成绩', certificates: '证书',
}
// answers' fields that describe the refusal rather than name an input
const DETAIL_FIELDS = new Set(['window', 'opens', 'closes', 'status', 'published_at', 'application',
  'application_id', 'enquiry_id', 'profile', 'ticket', 'session_id', 'list_no'])

/** Names of the fields, for messages that say which one is wrong. */
export const FIELD_LABELS = {
  name: '姓名', id_type: '证件类型', id_number: '证件号码', mobile: '手机号码',
  username: '用户名', password: '密码', old_password: '原密码', new_password: '新密码',
  photo: '照片', files: '证明材料', level: '报考级别', subjects: '报考科目',
  registration_point: '报名点', commitment: '告知承诺书', signed_name: '签名',
  exemption: '免试科目', session_id: '考试', question: '问题', email: '电子邮箱',
  address: '通讯地址', gender: '性别', birth_date: '出生日期', ethnicity: '民族',
  number: '证书编号', certificate_number: '证书编号', code: '验证码',
}

// (pattern on the English message, Chinese; $1.. from the pattern's groups, or a function of
// the match). The services' specific refusals first: later entries are broader.
const KNOWN = [
  // 账号 (account)
  [/A staff account has no candidate profile/i, '工作人员账号没有考生个人信息。'],
  [/unknown profile section/i, '没有这一部分个人信息。'],
  [/^some fields are not valid/i, CODE_MESSAGES.validation_failed],
  [/^No such account/i, '没有找到该账号。'],
  [/^No photo uploaded yet/i, '尚未上传照片。'],
  [/These details are already registered to another account/i,
    '这些信息已被其他账号注册：每人只能注册一个账号，请直接登录或找回密码。'],
  [/^Not an account id|^Expected an application id/i, '编号有误，请从列表中重新打开。'],
  // 准考证与签到 (admission)
  [/ticket sequence is used up/i, '准考证号的序号已用完，不能再编排准考证，请联系系统管理员。'],
  [/ticket number format .* gives .* to two candidates/i,
    '准考证号格式会使两名考生得到同一号码，请修改考试计划中的准考证号格式。'],
  [/^Admission has no exam session/i, '考场编排尚未收到这次考试的计划，请稍后再试。'],
  [/^No room (\S+) in session \S+; its rooms are (.+?)\.?$/i, '本次考试没有考场 $1（现有考场：$2）。'],
  [/ticket number is used in more than one exam session/i,
    '该准考证号在多次考试中使用，请先选择考试（或扫描准考证上的二维码）。'],
  [/scanned QR code belongs to another ticket/i, '扫描的二维码与输入的准考证号不属于同一张准考证。'],
  [/QR code is not a Kaowu admission ticket code/i, '这不是本系统准考证的二维码，请输入准考证号。'],
  [/QR code's check value does not match/i,
    '二维码校验不符，准考证可能被伪造或涂改：请核验考生的身份证件并报告主考。'],
  // 证书 (certificate)
  [/names no candidate .*a certificate needs the holder/i, '缺少持证人的姓名和证件信息，不能制作证书。'],
  [/^Certificate (\S+) was already revoked on (.+?) \(/i, '证书 $1 已于 $2 撤销，无需重复操作。'],
  [/^Certificate (\S+) was revoked on (.+?) \(.*it is not handed out/i,
    '证书 $1 已于 $2 撤销，不发放纸质证书。'],
  [/^Unknown format/i, '不支持这种下载格式。'],
  [/certificate belongs to another candidate/i, '该证书属于其他考生，只有持证人本人可以下载。'],
  [/certificates window .* is not known yet/i, '证书发放时段尚未确定：电子证书在证书发放开始后才能下载。'],
  [/a pickup notice names a scheduled session/i, '没有这次考试的计划：领证通知须针对已安排的考试。'],
  [/pickup period must start before it ends/i, '领证开始时间须早于结束时间。'],
  [/No paper-certificate pickup notice .* has been published/i,
    '本次考试尚未发布领证通知，纸质证书在通知发布后才能领取。'],
  [/^Paper certificates of session \S+ can be collected from (.+?) \(/i,
    '纸质证书自 $1 起领取（见领证通知），现在还不能领取。'],
  [/^The paper certificate (\S+) was already collected on (.+?) by (.+?)( \(proxy\))?\.?$/i,
    (m) => `纸质证书 ${m[1]} 已于 ${m[2]} 由 ${m[3]}${m[4] ? '（代领）' : ''}领取。`],
  [/That is the holder's own document/i,
    '这是持证人本人的证件：本人领取请不要选择“代领”；代领须登记代领人自己的证件。'],
  [/document shown does not match the certificate holder's/i,
    '出示的证件与持证人不符：本人领取须出示报名时使用的证件；他人代领请选择“代领”并登记代领人的证件。'],
  [/certificate changed while it was being prepared/i, '证书刚刚发生变化，请重试。'],
  [/^No status list/i, '没有找到该证书状态列表。'],
  // 报名 (registration)
  [/^Session \S+ is already scheduled; amend its timetable/i,
    '这次考试的计划已经加载；如需改动时间，请调整时间安排。'],
  [/application cannot be accepted as it stands/i, '报名信息有误，请按提示修改。'],
  [/^No such application/i, '没有找到该报名记录。'],
  [/^This registration was already voided at (.+?) by (.+?): (.*)$/i,
    '该报名已于 $1 被认定无效（$2：$3），无需重复操作。'],
  [/^Voiding a registration needs a reason/i, '认定报名无效须填写原因。'],
  [/is shown to the staff of their registration point only/i, '考生的资料只向其报名点的工作人员显示。'],
  [/^This application belongs to registration point (\S+), not yours \((\S+)\)/i,
    '该报名属于报名点 $1，不是您所在的报名点（$2）。'],
  [/Registration has not heard of this account yet/i, '报名系统尚未收到该账号的信息，请稍后再试。'],
  [/no such proof file/i, '该报名没有这份证明材料。'],
  [/^No exam session \S+ has been scheduled|^No such exam session/i, '没有找到这次考试。'],
  // 成绩 (scoring)
  [/score file is larger than (\S+) MiB/i,
    '成绩文件超过 $1 MiB，未导入任何成绩：请向阅卷中心索取不含多余列或填充内容的文件。'],
  [/score file has a header but no score rows/i, '成绩文件只有表头、没有成绩行，未导入任何成绩。'],
  [/score file has more than (\d+) rows/i, '成绩文件超过 $1 行，未导入任何成绩。'],
  [/(\d+) problem\(s\) in (\d+) row\(s\); nothing was imported/i,
    '成绩文件中 $2 行共有 $1 处问题，未导入任何成绩：请改正下列各行后重新导入整个文件。'],
  [/^The scores of \S+ were published at (.+?); imports are refused/i,
    '成绩已于 $1 公布，公布后不能再导入（个别考生的成绩可认定无效）。'],
  [/^Scores can be imported only after the .* window has ended/i, '考试结束后才能导入成绩。'],
  [/scores of this session can no longer be imported/i, '成绩查询时段已结束，不能再导入本次考试的成绩。'],
  [/^The scores of \S+ were already published at (.+?)\.?$/i, '成绩已于 $1 公布，无需重复公布。'],
  [/^No scores have been imported for/i, '尚未导入成绩，请先导入阅卷中心的成绩文件。'],
  [/^Nothing to publish for/i, '没有可以公布的成绩。'],
  [/^These scores were already voided: (.*)$/i, '这些成绩已被认定无效（$1），无需重复操作。'],
  [/^No exam session \S+ is known to scoring/i, '成绩系统中还没有这次考试。'],
  [/^No ticket (\S+) in \S+\.?$/i, '本次考试没有准考证 $1。'],
  [/holds no admission ticket for this session: there are no scores to void/i,
    '该考生没有本次考试的准考证，没有可认定无效的成绩。'],
  // 资格核查 (verification)
  [/cannot withdraw the commitment: .* already passed the manual check/i,
    '证明材料已通过人工核查，不能再撤回告知承诺。'],
  [/cannot accept proof: .* finally rejected/i, '报名已终止（人工核查最终不通过），不能再提交证明材料。'],
  [/^case \S+ has no commitment to withdraw/i, '本次报名未采用告知承诺制，无需撤回承诺。'],
  [/^cannot reopen: /i, '原核查结果已不再有效，不能重新核查；请直接答复。'],
  [/^cannot ([a-z -]+): case \S+ (.+)$/i, (m) => caseRefusal(m[1], m[2])],
  [/needs a reason$/i, '请填写原因。'],
  [/the reason is too long/i, '原因太长，最多 500 字。'],
  [/^proof needs at least one file/i, '请至少选择一个文件。'],
  [/^staff of point (\S+) cannot decide cases of point (\S+)/i,
    '您是报名点 $1 的工作人员，不能处理报名点 $2 的核查。'],
  [/^staff of point (\S+) cannot answer enquiries about cases of point (\S+)/i,
    '您是报名点 $1 的工作人员，不能答复报名点 $2 的疑问。'],
  [/^outside the registration point's service hours: point (\S+) (decides manual checks|answers enquiries)[^(]*(?:\((.+)\))?/i,
    (m) => `现在不在报名点 ${m[1]} 的服务时间内，${/enquir/i.test(m[2]) ? '疑问' : '人工核查'}只能在服务时间内办理${m[3] ? `（${m[3]}）` : ''}。`],
  [/spot-check rate must be between 0 and 1/i, '抽查比例须在 0 到 1 之间。'],
  [/spot check for session \S+ has already been drawn/i, '本次考试已经抽查，抽取的样本不再改变。'],
  [/^a draw needs an id/i, '抽查缺少编号，请重试。'],
  [/spot-check decision needs who took it/i, '抽查复核决定须记录办理人。'],
  [/ must not be blank$/i, '内容不能为空。'],
  [/ is too long$/i, '内容太长。'],
  [/only raise enquiries about your own application/i, '您只能就本人的报名提出疑问。'],
  [/is still waiting for an answer from registration point/i, REASON_MESSAGES.enquiry_open],
  [/no manual-check or spot-check rejection to question/i, REASON_MESSAGES.nothing_to_question],
  [/^case \S+ has no enquiry|^No such enquiry/i, '没有找到该疑问。'],
  [/^enquiry \S+ is already /i, '该疑问已经答复，无需重复操作。'],
  [/cannot tell whose integrity record to write/i, '该报名没有资格核查记录，不能写入诚信档案。'],
  [/no eligibility rules \(报考条件\) for exam year (\d+)/i, '$1 年度没有报考条件，请先加载。'],
  [/You have no verification case in this exam session/i, '您在本次考试中没有资格核查记录。'],
  [/^No verification case for this application/i, '该报名还没有资格核查记录，请稍后再试。'],
  // 通用 (broader ones)
  [/invalid username or password|wrong username or password|username or password is wrong/i,
    '用户名或密码不正确。'],
  [/locked/i, REASON_MESSAGES.locked],
  [/too many (failed )?(login|sign-in)/i, '登录失败次数过多，请稍后再试。'],
  [/a username is 4.32 letters/i, '用户名为 4–32 位英文字母、数字或下划线。'],
  [/username is (already )?taken|already (registered|in use).*username|username.*already/i,
    '该用户名已被使用，请换一个。'],
  [/id number.*already|already.*id number|already registered/i, '该证件号码已注册过账号，请直接登录。'],
  [/mobile.*already|already.*mobile/i, '该手机号码已被其他账号使用。'],
  [/password must not be the same as the username/i, '密码不能与用户名相同。'],
  [/password needs at least one letter and one digit/i, '密码至少包含一个字母和一个数字。'],
  [/check digit/i, '证件号码最后一位校验码不正确，请核对是否有输错的数字。'],
  [/birth date in the ID number is not a real date/i, '证件号码中的出生日期不是有效日期。'],
  [/birth date in the ID number is out of range/i, '证件号码中的出生日期不在有效范围内。'],
  [/resident ID number is 18 characters/i, '居民身份证号码为 18 位：17 位数字（不以 0 开头）加 1 位数字或 X。'],
  [/passport number/i, '护照号码为 5–17 位字母或数字。'],
  [/Hong Kong\/Macao permit/i, '港澳通行证号码为 H 或 M 加 8 位或 10 位数字。'],
  [/Taiwan permit/i, '台湾通行证号码为 8 位或 10 位数字。'],
  [/mobile/i, '手机号码为 11 位数字，以 13–19 开头。'],
  [/a name has only letters/i, '姓名只能包含文字、空格和间隔号“·”。'],
  [/(shorter than|length must be between|longer than) .*?(\d+)/i, '长度不符合要求。'],
  [/current password is wrong|old password/i, '原密码不正确。'],
  [/already applied for this exam session/i, '您已报名本次考试，每人每次考试只能报名一次。'],
  [/must be 100% complete before you can apply/i, '账号信息完整度为 100% 时才能报名，请先完善个人信息。'],
  [/commitment scheme .*not open to candidates with a live record/i,
    '您在诚信档案中有记录，不能采用告知承诺制；请选择不签署承诺书，提交证明材料。'],
  [/no application for this exam session/i, '您尚未报名本次考试。'],
  [/voided by the exam authority/i, '您的报名已被考试机构认定无效（报名无效），不能再办理其他业务。'],
  [/not made under the commitment scheme/i, '本次报名未采用告知承诺制，无需撤回承诺。'],
  [/commitment can no longer be withdrawn/i, '当前状态下已不能撤回告知承诺。'],
  [/No proof is asked of this application now/i, '当前不需要提交证明材料。'],
  [/proof is accepted from (.+?) until confirmation closes at (.+?) \(Asia/i,
    '证明材料受理时间为 $1 至 $2（北京时间），现在不在受理时间内。'],
  [/already confirmed/i, '您已核对确认，无需重复操作。'],
  [/Only an application whose eligibility is confirmed can be confirmed/i,
    '资格核查通过后才能核对确认；如有疑问，请在核对确认截止前联系您的报名点。'],
  [/no admission ticket for this exam session/i, '您没有本次考试的准考证：准考证在核对确认结束后发给已核对确认的考生。'],
  [/ticket is not issued yet/i, '准考证尚未生成：考场在核对确认结束后编排。'],
  [/no admission ticket to print|No admission ticket yet/i, '没有可以打印的准考证，请联系您的报名点。'],
  // 考场签到 (the exam authority at the door)
  [/identity document does not match the candidate on this ticket/i,
    '证件与准考证上的考生不一致：考生须出示报名时使用的身份证件。'],
  [/This ticket has been cancelled and no longer admits/i, '该准考证已作废（报名无效），不能入场。'],
  [/never printed before the printing window closed, so the exam is forfeited/i,
    '该考生逾期未打印准考证，视为放弃考试，不能入场。'],
  [/^Subject (\S+) is not on this ticket; it admits to (.+?)\.?$/i, '准考证上没有科目 $1（可参加的科目：$2）。'],
  [/^Check-in for (\S+) is open from (.+?) until the sitting ends at (.+?) \(Asia\/Shanghai\); it has not opened yet/i,
    '科目 $1 的签到时间为 $2 至 $3（北京时间），现在尚未开始签到。'],
  [/^Check-in for (\S+) is open from (.+?) until the sitting ends at (.+?) \(Asia\/Shanghai\); it has closed/i,
    '科目 $1 的签到时间为 $2 至 $3（北京时间），签到已结束。'],
  [/No admission ticket has this number/i, '没有这个准考证号，请核对准考证上的号码。'],
  [/Electronic certificates can be downloaded from/i, '电子证书在证书发放时段开始后才能下载。'],
  [/was revoked on/i, '该证书已被撤销，不能下载。'],
  [/no results in this exam session/i, '您在本次考试中没有成绩记录。'],
  [/Scores of .* are published at (.+?) \(/i, '成绩将于 $1（北京时间）公布，请届时查询。'],
  [/Scores of .* have not been published yet/i, '成绩尚未公布，请稍后再查询。'],
  [/Enquiries about a manual-check or spot-check outcome must reach/i,
    '核对确认已截止，不能再提出疑问（逾期视作报名不成功）。'],
  [/no message with this id/i, '没有找到这条消息。'],
  [/No certificate/i, '没有找到该证书。'],
  [/is too large: at most (\S+ \S+)/i, '文件太大：每个文件最大 $1。'],
  [/At most (\d+) files at once/i, '一次最多上传 $1 个文件。'],
  [/must be a (PDF or JPEG|JPEG) file/i, '文件格式不符合要求：只接受 $1 文件。'],
  [/is empty/i, '文件是空的。'],
  [/the photo is too large: (\d+) KiB/i, '照片文件太大（$1 KB），最大 200 KB。'],
  [/the photo is too small/i, '照片文件太小，至少 1 KB。'],
  [/the photo is (\d+)×(\d+) px/i, '照片尺寸为 $1×$2 像素，须为 295×413 像素（宽×高）。'],
  [/the photo is not a JPEG/i, '照片须为 JPEG 格式。'],
  [/the photo background is not white/i, '照片背景须为白色。'],
  [/the photo file is damaged/i, '照片文件已损坏，请重新导出后上传。'],
  [/must not be in the future|in the future/i, '日期不能晚于今天。'],
  [/missing data for required field|required/i, '此项必须填写。'],
  [/not a valid date/i, '请填写有效日期（年-月-日）。'],
  [/not a valid email/i, '请填写有效的电子邮箱地址。'],
]

// a verification case's state, for "cannot <action>: case <id> <state>"
const CASE_ACTIONS = {
  'accept proof': '提交证明材料', 'answer an enquiry': '答复疑问', 'decide a manual check': '作出人工核查决定',
  'decide a spot check': '作出抽查复核决定', 'raise an enquiry': '提出疑问', 'void the case': '认定报名无效',
  'withdraw the commitment': '撤回告知承诺',
}
const CASE_STATES = [
  [/checked automatically/, '报名正在自动核查'], [/waiting for the candidate's proof/, '报名正在等待考生提交证明材料'],
  [/waiting for a manual check/, '报名正在等待人工核查'], [/rejected by the manual check/, '报名人工核查未通过'],
  [/passed and waits for the spot-check/, '报名已通过核查，正在等待抽查'], [/drawn for the spot check/, '报名已被抽中复核'],
  [/already confirmed/, '报名已核对确认'], [/terminated/, '报名已终止'], [/voided/, '报名已被认定无效'],
]

function caseRefusal(action, state) {
  const where = CASE_STATES.find(([p]) => p.test(state))
  return `${where ? where[1] : '报名当前的核查状态'}，不能${CASE_ACTIONS[action] || '办理此项业务'}。`
}

// a time in a message as people read it: Beijing time, without the zone's English name
function localTime(part) {
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/.test(part)) return shanghaiTime(part)
  return part.replace(/\s*\(?Asia\/Shanghai\)?$/, '')
}

/** A message from the API in Chinese (null when it is not one we know). */
export function knownMessage(english) {
  if (!english) return null
  const text = String(english)
  if (/[\u4e00-\u9fff]/.test(text) && !/[a-z]{4,}/i.test(text.replace(/\([^)]*\)/g, ''))) {
    return text // already Chinese
  }
  // Chinese first, the same in English after it for the logs: the Chinese part
  const both = /^([^A-Za-z]{0,12}[\u4e00-\u9fff][\s\S]*?。)\s*[A-Z][^\u4e00-\u9fff]*$/.exec(text)
  if (both) return both[1]
  for (const [pattern, zh] of KNOWN) {
    const m = pattern.exec(text)
    if (!m) continue
    const parts = m.map((part) => (part === undefined ? part : localTime(part)))
    return typeof zh === 'function' ? zh(parts) : zh.replace(/\$(\d)/g, (_, i) => parts[Number(i)] ?? '')
  }
  return null
}

/** The Chinese message for one field's complaint. */
export function fieldMessage(field, english) {
  const known = knownMessage(english)
  if (known) return known
  const label = FIELD_LABELS[field]
  return label ? `${label}填写有误，请检查。` : '此项填写有误，请检查。'
}

/**
 * The gateway's error body (``{"error": {code, message, reason, fields}}``) and status in
 * Chinese: ``{code, reason, message, fields}`` with ``fields`` {name: Chinese message}.
 */
export function chineseError(status, body) {
  const e = (body && typeof body === 'object' && body.error) || {}
  const code = e.code || (status >= 500 ? 'internal' : status === 0 ? 'network' : 'refused')
  const fields = {}
  const details = {}
  for (const [name, msg] of Object.entries(e.fields || {})) {
    if (DETAIL_FIELDS.has(name) || name === '_body' || name === '_schema') {
      details[name] = msg
      continue
    }
    // nested names ("education.0.school") are shown at their top field
    fields[name] = fieldMessage(name.split('.').pop().replace(/^\d+$/, name.split('.')[0]), msg)
  }
  const message = REASON_MESSAGES[e.reason] || knownMessage(e.message) || windowMessage(details) ||
    CODE_MESSAGES[code] || CODE_MESSAGES.refused
  return { code, reason: e.reason || null, message, fields, details, english: e.message || '' }
}

/** A window refusal ({window, opens, closes}) in words, with its times in Beijing time. */
export function windowMessage(details) {
  const name = WINDOW_NAMES[details?.window]
  if (!name) return null
  const span = details.opens && details.closes
    ? `（${shanghaiTime(details.opens)} 至 ${shanghaiTime(details.closes)}，北京时间）` : ''
  return `此项业务只能在「${name}」时段${span}内办理，现在不在该时段内。`
}
